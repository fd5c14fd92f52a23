# Homebrew formula for a tap (homebrew-core takes only well-known projects):
#   brew tap OWNER/lockd https://github.com/OWNER/homebrew-lockd
#   brew install lockd && brew services start lockd
# Built from the source tarball of a release (`make dist-src`: replace url
# and sha256 with the release's). Linux only: the Raft library's disk I/O
# is libuv plus Linux kernel AIO (io_submit, O_DIRECT); it does not build on
# macOS.
class Lockd < Formula
  desc "Distributed lock service with an HTTP API (Raft, LMDB)"
  homepage "https://github.com/OWNER/lockd"
  url "https://github.com/OWNER/lockd/releases/download/v0.1.0/lockd-0.1.0.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license "MIT"

  depends_on "autoconf" => :build
  depends_on "automake" => :build
  depends_on "libtool" => :build
  depends_on "pkgconf" => :build
  depends_on "protobuf-c" => :build # protoc-c; the library is linked too
  depends_on "scdoc" => :build
  depends_on "h2o" # libh2o-evloop
  depends_on "jemalloc"
  depends_on "libuv"
  depends_on :linux
  depends_on "lmdb"
  depends_on "lz4"
  depends_on "openssl@3"

  # The C Raft library is in no Homebrew formula: Debian's source package
  # (the same upstream tarball lockd's own build uses), built static.
  resource "raft" do
    url "https://deb.debian.org/debian/pool/main/r/raft/raft_0.22.1.orig.tar.gz"
    sha256 "7e45b6f24f3671c9bfd5b146814493f87cb2e560712bd469c1f5969a4b94291a"
  end

  def install
    raft = buildpath/"build/libraft-0.22.1"
    resource("raft").stage do
      system "autoreconf", "-fi"
      system "./configure", "--disable-dependency-tracking", "--disable-shared", "--enable-static",
                            "--with-lz4", "--prefix=#{raft}"
      system "make", "install"
    end
    # The Makefile's first step installs Debian packages (scripts/deps.sh);
    # here depends_on has done that: mark it done.
    mkdir_p "build"
    touch "build/.deps-installed"
    system "make", "all", "man"
    bin.install "build/lockd", "build/lockctl"
    man8.install "build/man/lockd.8", "build/man/lockctl.8"
    (buildpath/"lockd.conf").write <<~EOS
      # lockd's configuration (man lockd, "CONFIGURATION FILE")
      listen = 127.0.0.1:2080
      data-dir = #{var}/lib/lockd
      admin-socket = #{var}/run/lockd.sock
    EOS
    (etc/"lockd").install "lockd.conf"
  end

  def post_install
    (var/"lib/lockd").mkpath
    (var/"run").mkpath
  end

  def caveats
    <<~EOS
      lockctl finds the service's socket with:
        export LOCKD_SOCKET=#{var}/run/lockd.sock
    EOS
  end

  service do
    run [opt_bin/"lockd", "--config", etc/"lockd/lockd.conf"]
    keep_alive true
    working_dir var/"lib/lockd"
    log_path var/"log/lockd.log"
    error_log_path var/"log/lockd.log"
  end

  test do
    port = free_port
    data = testpath/"data"
    pid = spawn bin/"lockd", "--listen", "127.0.0.1:#{port}", "--data-dir", data, "--workers", "1"
    begin
      ready = false
      120.times do
        ready = quiet_system "curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:#{port}/readyz"
        break if ready

        sleep 0.25
      end
      assert ready, "lockd did not become ready within 30 s"
      assert_match '"locked":true', shell_output("curl -s -X POST http://127.0.0.1:#{port}/lock/brew?owner=t")
      assert_match '"owner":"t"', shell_output("curl -s http://127.0.0.1:#{port}/lock/brew")
      assert_match "role:", shell_output("#{bin}/lockctl --socket #{data}/lockd.sock status")
      assert_match version.to_s, shell_output("#{bin}/lockd --version")
    ensure
      Process.kill("TERM", pid)
      Process.wait(pid)
    end
  end
end
