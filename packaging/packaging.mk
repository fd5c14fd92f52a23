# packaging/packaging.mk: packaging targets, included from the Makefile (one
# line) so that they stay apart from the build's own rules.
#
#   make man        man pages lockd(8), lockctl(8) from docs/man/*.scd (scdoc)
#   make deb        the Debian package, dpkg-buildpackage -us -uc -b on a
#                   copy of the tree: $(BUILD)/deb/lockd_VERSION_ARCH.deb
#   make deb-test   builds it, lintian, installs it into a debootstrapped
#                   Debian 12 root and runs it there (tests/pkg/deb_test.sh)
#   make dist       $(BUILD)/dist/lockd-VERSION-linux-amd64.tar.gz
#   make dist-src   $(BUILD)/dist/lockd-VERSION.tar.gz (the source tarball)
#   make brew-test  runs packaging/homebrew/lockd.rb's install and test
#                   blocks on this machine (tests/pkg/brew_test.sh)

LOCKD_VERSION_STR := $(shell sed -n 's/^\#define LOCKD_VERSION "\(.*\)"/\1/p' common/version.h)
# Outside $(BUILD): the Makefile scans $(BUILD) for *.d files, and a Debian
# root is full of *.d directories. `make clean` keeps it (the cached root).
PKG_DIR := build-pkg

# Debian 12's raft.h (0.15.0) carries no version macro: take pkg-config's.
RAFT_PC_VERSION := $(shell pkg-config --modversion raft 2>/dev/null)
ifneq ($(RAFT_PC_VERSION),)
$(BUILD)/obj/common/build_info.o: CFLAGS += -DLOCKD_RAFT_PC_VERSION='"$(RAFT_PC_VERSION)"'
endif

.PHONY: man deb deb-test dist dist-src brew-test

MAN_PAGES := $(BUILD)/man/lockd.8 $(BUILD)/man/lockctl.8
man: $(MAN_PAGES)
$(BUILD)/man/%.8: docs/man/%.8.scd
	@mkdir -p $(@D)
	scdoc < $< > $@

# ---- Debian package -------------------------------------------------------
# dpkg-buildpackage writes next to the source tree, so it runs on a copy
# (tracked and new files, as git sees them) under $(PKG_DIR)/src.
deb: | $(DEPS_STAMP)
	tests/pkg/build_deb.sh $(PKG_DIR)
	@ls -l $(PKG_DIR)/*.deb

# Time-boxed: ~1 min with the cached root, plus a few minutes the first time
# (debootstrap, package downloads); 30 min is a hang.
deb-test: deb dist
	timeout 1800 tests/pkg/deb_test.sh $(PKG_DIR) $(BUILD)/dist/lockd-$(LOCKD_VERSION_STR)-linux-amd64.tar.gz

# ---- release tarballs -----------------------------------------------------
# Linked statically where Debian ships an archive (.a): LMDB, protobuf-c,
# libuv, jemalloc and the Raft library (the one the Makefile links: its
# LIBRAFT_A if it builds one, else Debian's libraft.a). h2o exists only as
# a shared library in Debian (libh2o-evloop-dev ships no .a): the tarball
# carries Debian's libh2o-evloop.so.0.13 and libwslay.so.1 in lib/ (found
# through the binary's RPATH $ORIGIN/../lib). OpenSSL stays the system's
# libssl.so.3, as h2o's shared library links it (one OpenSSL per process,
# security updates from the distribution); glibc and zlib are the system's.
DIST_NAME := lockd-$(LOCKD_VERSION_STR)-linux-amd64
DIST_DIR  := $(BUILD)/dist/$(DIST_NAME)
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
SYSLIB    := /usr/lib/$(MULTIARCH)
DIST_RAFT_A ?= $(if $(LIBRAFT_A),$(LIBRAFT_A),$(SYSLIB)/libraft.a)
DIST_STATIC := $(SYSLIB)/liblmdb.a $(SYSLIB)/libprotobuf-c.a $(DIST_RAFT_A) $(SYSLIB)/libuv_a.a \
               $(if $(wildcard $(SYSLIB)/liblz4.a),$(SYSLIB)/liblz4.a)
# jemalloc: its archive comes before libc, so malloc and the rest resolve to
# it (-u malloc makes sure its object is taken); -rdynamic (LDFLAGS) exports
# them to the shared h2o too.
DIST_LIBS := $(DIST_STATIC) -Wl,-u,malloc $(SYSLIB)/libjemalloc_pic.a \
             -lh2o-evloop -lssl -lcrypto -lz -lpthread -ldl -lrt -lm \
             -Wl,--disable-new-dtags,-rpath,'$$ORIGIN/../lib'
DIST_BUNDLED := $(SYSLIB)/libh2o-evloop.so.0.13 $(SYSLIB)/libwslay.so.1

$(BUILD)/dist/bin/lockd: $(BUILD)/obj/master/main.o $(BUILD)/liblockd.a $(DIST_RAFT_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/obj/master/main.o $(BUILD)/liblockd.a $(DIST_LIBS)
$(BUILD)/dist/bin/lockctl: $(LOCKCTL_OBJ) $(BUILD)/liblockd.a $(DIST_RAFT_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(LOCKCTL_OBJ) $(BUILD)/liblockd.a $(DIST_LIBS)

dist: $(BUILD)/dist/bin/lockd $(BUILD)/dist/bin/lockctl $(MAN_PAGES)
	rm -rf $(DIST_DIR) && mkdir -p $(DIST_DIR)/bin $(DIST_DIR)/lib $(DIST_DIR)/share/man/man8 $(DIST_DIR)/etc
	cp $(BUILD)/dist/bin/lockd $(BUILD)/dist/bin/lockctl $(DIST_DIR)/bin/
	strip --strip-debug $(DIST_DIR)/bin/lockd $(DIST_DIR)/bin/lockctl
	cp -L $(DIST_BUNDLED) $(DIST_DIR)/lib/
	gzip -9n < $(BUILD)/man/lockd.8 > $(DIST_DIR)/share/man/man8/lockd.8.gz
	gzip -9n < $(BUILD)/man/lockctl.8 > $(DIST_DIR)/share/man/man8/lockctl.8.gz
	cp packaging/systemd/lockd.service packaging/lockd.conf $(DIST_DIR)/etc/
	cp README.md LICENSE packaging/INSTALL-tarball.md $(DIST_DIR)/
	cd $(DIST_DIR) && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS
	tar -C $(BUILD)/dist --owner=0 --group=0 --numeric-owner --sort=name -czf $(BUILD)/dist/$(DIST_NAME).tar.gz $(DIST_NAME)
	@ls -l $(BUILD)/dist/$(DIST_NAME).tar.gz

# The source tarball Homebrew builds from: the tracked tree as git has it.
dist-src:
	@mkdir -p $(BUILD)/dist
	git archive --format=tar.gz --prefix=lockd-$(LOCKD_VERSION_STR)/ -o $(BUILD)/dist/lockd-$(LOCKD_VERSION_STR).tar.gz HEAD
	@sha256sum $(BUILD)/dist/lockd-$(LOCKD_VERSION_STR).tar.gz

brew-test: dist-src
	timeout 1800 tests/pkg/brew_test.sh $(BUILD)/dist/lockd-$(LOCKD_VERSION_STR).tar.gz $(PKG_DIR)/brew
