# frozen_string_literal: true

# Sequential try-lock + release round trips per second: the Ruby client
# against raw keep-alive Net::HTTP on the same node. Usage: URL SECONDS
$LOAD_PATH.unshift File.expand_path("../ruby/lib", __dir__)
require "lockd"

def with_client(url, secs)
  c = Lockd::Client.new(url)
  n = 0
  finish = Lockd.monotonic + secs
  while Lockd.monotonic < finish
    c.try_acquire("bench-rb-client", ttl: 30).release
    n += 1
  end
  n / secs
end

def raw(url, secs)
  u = URI(url)
  n = 0
  Net::HTTP.start(u.host, u.port) do |h|
    h.max_retries = 0
    finish = Lockd.monotonic + secs
    while Lockd.monotonic < finish
      tok = JSON.parse(h.request(Net::HTTP::Post.new("/lock/bench-rb-raw?owner=raw&ttl=30000ms")).body)["token"]
      h.request(Net::HTTP::Delete.new("/lock/bench-rb-raw?owner=raw&token=#{tok}"))
      n += 1
    end
  end
  n / secs
end

url = ARGV[0]
secs = Float(ARGV[1])
with_client(url, 0.5)
raw(url, 0.5)
rounds = 5.times.map { [raw(url, secs), with_client(url, secs)] }
r = rounds.map(&:first).sort[2]
c = rounds.map(&:last).sort[2]
printf("ruby    raw %8.0f rt/s   client %8.0f rt/s   client/raw %.2f\n", r, c, c / r)
