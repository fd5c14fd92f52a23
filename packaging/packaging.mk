# packaging/packaging.mk: packaging targets, included from the Makefile (one
# line) so that they stay apart from the build's own rules.
#
#   make man        man pages lockd(8), lockctl(8) from docs/man/*.scd
#   make deb        the Debian package (dpkg-buildpackage -us -uc -b)
#   make deb-test   builds it, lintian, installs it into a debootstrapped
#                   Debian 12 root and runs it there (tests/pkg/deb_test.sh)
#   make dist       lockd-VERSION-linux-amd64.tar.gz (mostly static)
#   make dist-src   lockd-VERSION.tar.gz, the source tarball (Homebrew)

LOCKD_VERSION_STR := $(shell sed -n 's/^\#define LOCKD_VERSION "\(.*\)"/\1/p' common/version.h)

# Debian 12's raft.h (0.15.0) carries no version macro: take pkg-config's.
RAFT_PC_VERSION := $(shell pkg-config --modversion raft 2>/dev/null)
ifneq ($(RAFT_PC_VERSION),)
$(BUILD)/obj/common/build_info.o: CFLAGS += -DLOCKD_RAFT_PC_VERSION='"$(RAFT_PC_VERSION)"'
endif
