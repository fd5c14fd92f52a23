# frozen_string_literal: true

# Sequential try-lock + release round trips per second: the Ruby client
# against raw keep-alive Net::HTTP on the same node. Usage: URL SECONDS
$LOAD_PATH.unshift File.expand_path("../ruby/lib", __dir__)
require "lockd"

def cpu = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)

def with_client(url, secs)
  c = Lockd::Client.new(url)
  cpu0 = cpu
  n = 0
  finish = Lockd.monotonic + secs
  while Lockd.monotonic < finish
    c.try_acquire("bench-rb-client", ttl: 30).release
    n += 1
  end
  [n / secs, (cpu - cpu0) / n * 1e6]
end

def raw(url, secs)
  u = URI(url)
  n = 0
  cpu0 = cpu
  Net::HTTP.start(u.host, u.port) do |h|
    h.max_retries = 0
    finish = Lockd.monotonic + secs
    while Lockd.monotonic < finish
      tok = JSON.parse(h.request(Net::HTTP::Post.new("/lock/bench-rb-raw?owner=raw&ttl=30000ms")).body)["token"]
      h.request(Net::HTTP::Delete.new("/lock/bench-rb-raw?owner=raw&token=#{tok}"))
      n += 1
    end
  end
  [n / secs, (cpu - cpu0) / n * 1e6]
end

# CPU of the client's own logic per round trip, the network left out (its
# private exchange replaced by a canned answer).
def logic_only(n = 20_000)
  c = Lockd::Client.new("http://127.0.0.1:1")
  body = { "name" => "p", "locked" => true, "owner" => c.owner, "token" => 5, "ttl_ms" => 30_000 }
  c.define_singleton_method(:exchange) { |*| Lockd::Answer.new(200, {}, body, Lockd.monotonic, false, 1) }
  t = cpu
  n.times { c.try_acquire("p", ttl: 30).release }
  (cpu - t) / n * 1e6
end

url = ARGV[0]
secs = Float(ARGV[1])
with_client(url, 0.5)
raw(url, 0.5)
rounds = 9.times.map { [raw(url, secs), with_client(url, secs)] }
r = rounds.map { |x| x[0][0] }.sort[4]
c = rounds.map { |x| x[1][0] }.sort[4]
rc = rounds.map { |x| x[0][1] }.sort[4]
cc = rounds.map { |x| x[1][1] }.sort[4]
printf("ruby    raw %6.0f rt/s %5.0f us cpu/rt   client %6.0f rt/s %5.0f us cpu/rt   client/raw %.2f\n",
       r, rc, c, cc, c / r)
printf("ruby    client logic without the network: %.0f us cpu/rt\n", logic_only)
