# tests/pkg/brew_shim.rb FORMULA SOURCE_TARBALL WORKDIR: runs a Homebrew
# formula's `install`, `post_install`, `service` and `test` blocks on a
# machine without Homebrew (make brew-test). A small stand-in for the
# Formula DSL that packaging/homebrew/lockd.rb uses, nothing more:
#
#  - the formula's url is replaced by SOURCE_TARBALL (a local `make
#    dist-src`; its sha256 cannot be the release's, so it is not checked);
#  - resources are downloaded from their url and checked against their
#    sha256, as Homebrew does;
#  - depends_on is only recorded: this machine's Debian packages stand in
#    for the formulae (h2o, libuv, lmdb, ... from scripts/deps.sh);
#  - prefix is WORKDIR/prefix, var WORKDIR/var, testpath a fresh
#    WORKDIR/test.
# What Homebrew itself would add (its build environment and sandbox,
# bottles, `brew audit`, `brew services`' launchd/systemd files) is not run.
require "digest"
require "fileutils"
require "open-uri"
require "pathname"
require "socket"
require "tmpdir"

class Pathname
  def install(*files)
    mkpath
    files.flatten.each { |f| FileUtils.mv(f.to_s, (self / File.basename(f.to_s)).to_s) }
  end
end

class Resource
  attr_reader :name

  def initialize(name, cache)
    @name = name
    @cache = cache
  end

  def url(u = nil, **_kw) = u ? (@url = u) : @url
  def sha256(s = nil) = s ? (@sha256 = s) : @sha256

  def stage
    FileUtils.mkdir_p(@cache)
    file = File.join(@cache, File.basename(@url))
    unless File.exist?(file) && Digest::SHA256.file(file).hexdigest == @sha256
      warn "brew_shim: fetching #{@url}"
      URI.parse(@url).open("rb") { |src| File.binwrite(file, src.read) }
    end
    got = Digest::SHA256.file(file).hexdigest
    raise "resource #{@name}: sha256 #{got}, the formula says #{@sha256}" unless got == @sha256

    Dir.mktmpdir("brew-#{@name}") do |dir|
      system("tar", "-xzf", file, "-C", dir, "--strip-components=1") || raise("cannot unpack #{file}")
      Dir.chdir(dir) { yield }
    end
  end
end

class Formula
  class << self
    attr_reader :deps, :resource_blocks, :service_block, :test_block

    def desc(_) = nil
    def homepage(_) = nil
    def license(_) = nil
    def url(_, **_kw) = nil
    def sha256(_) = nil

    def depends_on(dep)
      (@deps ||= []) << dep
    end

    def resource(name, &blk)
      (@resource_blocks ||= {})[name] = blk
    end

    def service(&blk) = (@service_block = blk)
    def test(&blk) = (@test_block = blk)
  end

  attr_reader :buildpath, :prefix, :var, :testpath

  def initialize(work, version)
    @work = Pathname(work)
    @buildpath = @work / "src"
    @prefix = @work / "prefix"
    @var = @work / "var"
    @testpath = @work / "test"
    @version = version
  end

  def version = @version
  def bin = prefix / "bin"
  def sbin = prefix / "sbin"
  def man8 = prefix / "share/man/man8"
  def etc = prefix / "etc"
  def opt_bin = bin

  def resource(name)
    r = Resource.new(name, (@work / "cache").to_s)
    r.instance_eval(&self.class.resource_blocks.fetch(name))
    r
  end

  def system(*args)
    puts "==> #{args.join(' ')}"
    Kernel.system(*args.map(&:to_s)) || raise("failed: #{args.join(' ')}")
  end

  def quiet_system(*args) = Kernel.system(*args.map(&:to_s), out: File::NULL, err: File::NULL)
  def mkdir_p(d) = FileUtils.mkdir_p(d.to_s)
  def touch(f) = FileUtils.touch(f.to_s)
  def spawn(*args) = Process.spawn(*args.map(&:to_s))

  def free_port
    s = TCPServer.new("127.0.0.1", 0)
    s.addr[1]
  ensure
    s&.close
  end

  def shell_output(cmd, want = 0)
    out = `#{cmd}`
    raise "#{cmd}: exit status #{$?.exitstatus}, want #{want}\n#{out}" unless $?.exitstatus == want

    out
  end

  def assert(cond, msg = "assertion failed") = (cond || raise(msg))
  def assert_match(pattern, text) = assert(text.match?(pattern), "#{pattern.inspect} not in #{text.inspect}")

  # The service block's words, recorded as `brew services` reads them.
  def service_spec
    spec = {}
    %i[run keep_alive working_dir log_path error_log_path].each do |k|
      define_singleton_method(k) { |v| spec[k] = v }
    end
    instance_exec(&self.class.service_block)
    spec
  end
end

formula_file, tarball, work = ARGV
abort "usage: brew_shim.rb FORMULA SOURCE_TARBALL WORKDIR" unless work
load formula_file
klass = ObjectSpace.each_object(Class).find { |c| c < Formula }
version = File.basename(tarball)[/-(\d[\w.]*)\.tar\.gz\z/, 1] || raise("no version in #{tarball}")
work = File.expand_path(work)
FileUtils.rm_rf([File.join(work, "src"), File.join(work, "prefix"), File.join(work, "var"), File.join(work, "test")])
f = klass.new(work, version)
f.buildpath.mkpath
Kernel.system("tar", "-xzf", tarball, "-C", f.buildpath.to_s, "--strip-components=1") || abort("cannot unpack")
raise "the formula must say depends_on :linux" unless klass.deps.include?(:linux)

puts "==> install (#{klass.name} #{version}; depends_on #{klass.deps.map(&:inspect).join(', ')})"
Dir.chdir(f.buildpath) { f.install }
f.post_install if f.respond_to?(:post_install)
%w[bin/lockd bin/lockctl share/man/man8/lockd.8 share/man/man8/lockctl.8 etc/lockd/lockd.conf].each do |p|
  raise "not installed: #{p}" unless (f.prefix / p).exist?
end

spec = f.service_spec
cmd = Array(spec[:run]).map(&:to_s)
raise "service: #{cmd.first} is not installed" unless File.executable?(cmd.first)
raise "service: no config file #{cmd.last}" if cmd.include?("--config") && !File.exist?(cmd.last)

puts "==> service: #{cmd.join(' ')} (keep_alive #{spec[:keep_alive].inspect})"

puts "==> test"
f.testpath.mkpath
Dir.chdir(f.testpath) { f.instance_exec(&klass.test_block) }
puts "brew_shim: install, service and test of #{klass.name} #{version} passed"
