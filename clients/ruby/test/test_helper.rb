# frozen_string_literal: true

# Test support for the Ruby client: one harness process per run
# (clients/testing/harness.py: real lockd nodes, a cluster, nginx and
# scripted fake servers), driven over its JSON control API.
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "json"
require "net/http"
require "open3"
require "securerandom"
require "timeout"
require "minitest/autorun"
require "lockd"

# A hang must fail its test, not stall the run.
module HardTimeout
  def run(*)
    Timeout.timeout(90) { super }
  end
end
Minitest::Test.prepend(HardTimeout)

module Harness
  ROOT = File.expand_path("../../..", __dir__)
  PYTHON = ENV.fetch("PYTHON", "/usr/bin/python3")

  class << self
    def control
      @control ||= start
    end

    def start
      args = [PYTHON, File.join(ROOT, "clients/testing/harness.py")]
      args += ["--lockd", ENV["LOCKD_BIN"]] if ENV["LOCKD_BIN"]
      @stdin, @stdout, @wait = Open3.popen2(*args)
      line = Timeout.timeout(30) { @stdout.gets }
      raise "harness did not start" unless line

      Minitest.after_run { stop }
      JSON.parse(line)["control"]
    end

    def stop
      @stdin&.close
      @wait&.join(30)
    end

    def call(method, path, body = nil)
      uri = URI(control + path)
      Net::HTTP.start(uri.host, uri.port, read_timeout: 120) do |h|
        req = method == :get ? Net::HTTP::Get.new(uri) : Net::HTTP::Post.new(uri)
        req.body = JSON.generate(body || {}) if method == :post
        res = h.request(req)
        data = JSON.parse(res.body)
        raise "harness #{path}: #{data['error']}" unless res.code == "200"

        data
      end
    end

    def node_url = (@node_url ||= call(:post, "/node")["url"])
    def cluster = (@cluster ||= call(:post, "/cluster"))
    def leader(exclude: []) = call(:get, "/cluster/leader?exclude=#{exclude.join(',')}")
    def kill(id) = call(:post, "/cluster/kill", { "id" => id })
    def restart(id) = call(:post, "/cluster/restart", { "id" => id })
    def nginx = call(:post, "/nginx")["url"]
    def fake(tls: false) = Fake.new(call(:post, "/fake", { "tls" => tls }))
  end

  # A scripted fake lockd (clients/testing/fake_lockd.py).
  class Fake
    attr_reader :url, :ca_file

    def initialize(info)
      @url = info["url"]
      @ca_file = info["ca_file"]
    end

    def control(method, path, body = nil)
      uri = URI(@url + path)
      opts = { read_timeout: 30 }
      opts.merge!(use_ssl: true, ca_file: @ca_file) if @url.start_with?("https")
      Net::HTTP.start(uri.host, uri.port, **opts) do |h|
        req = method == :get ? Net::HTTP::Get.new(uri) : Net::HTTP::Post.new(uri)
        req.body = JSON.generate(body) if body
        JSON.parse(h.request(req).body)
      end
    end

    def script(steps) = control(:post, "/__fake/script", { "steps" => steps })
    def requests = control(:get, "/__fake/requests")["requests"]
  end
end

module Support
  def uniq(prefix) = "#{prefix}-#{SecureRandom.hex(5)}"

  def wait_for(timeout, interval = 0.02)
    deadline = Lockd.monotonic + timeout
    loop do
      v = begin
        yield
      rescue SystemCallError, IOError
        nil
      end
      return v if v || Lockd.monotonic >= deadline

      sleep interval
    end
  end

  def metric(url, name)
    text = Net::HTTP.get(URI("#{url}/metrics"))
    text.lines.select { |l| l.start_with?("#{name} ", "#{name}{") }.sum { |l| l.split.last.to_f }
  end
end
