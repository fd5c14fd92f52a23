# frozen_string_literal: true

# Scenario rows C01..C05 of clients/README.md, against a real 3-node cluster
# (started once per run) and nginx in front of it. A test that kills a node
# starts it again before it ends.
require_relative "test_helper"

class TestCluster < Minitest::Test
  include Support

  def setup
    @cluster = Harness.cluster
    @killed = []
  end

  def teardown
    @killed.each { |id| Harness.restart(id) }
  end

  def urls = @cluster["nodes"].values

  def kill(id)
    Harness.kill(id)
    @killed << id
  end

  # If the handle says it holds the lock at t0, a consistent read answered
  # before its valid_until must show its token.
  def assert_holds_when_not_lost(lk, observer)
    return if lk.lost?

    til = lk.valid_until
    info = begin
      observer.get(lk.name, consistent: true, timeout: 3)
    rescue Lockd::Unavailable
      return
    end
    return unless Lockd.monotonic < til

    refute_nil info, "handle not lost but the lock is free"
    assert_equal [lk.token, lk.owner], [info.token, info.owner]
  end

  def test_C01_leader_killed_under_keepalive
    c = Lockd::Client.new(urls, request_timeout: 3)
    observer = Lockd::Client.new(urls, request_timeout: 3)
    lost = Queue.new
    lk = c.acquire(uniq("c01"), ttl: 2).keepalive { |l| lost << l.lost_reason }
    kill(Harness.leader["id"])
    finish = Lockd.monotonic + 8
    while Lockd.monotonic < finish
      assert_holds_when_not_lost(lk, observer)
      sleep 0.05
    end
    if lk.lost?
      assert_equal 1, lost.size
      assert_raises(Lockd::LockLost) { lk.check! }
    else
      assert_equal 0, lost.size
      info = observer.get(lk.name, consistent: true)
      assert_equal [lk.token, c.owner], [info.token, info.owner]
      refute_equal @killed.first.to_s, c.leader[0]
    end
    lk.release
    assert_operator lost.size, :<=, 1
  end

  def test_C02_waiter_when_leader_dies
    a = Lockd::Client.new(urls, request_timeout: 3)
    b = Lockd::Client.new(urls, request_timeout: 3)
    name = uniq("c02")
    held = a.acquire(name, ttl: 30)
    t = Thread.new { b.acquire(name, ttl: 30, wait: 25) }
    leader = Harness.leader
    assert wait_for(10) { metric(leader["url"], "lockd_waiters") >= 1 }
    kill(leader["id"])
    held.release
    got = t.value
    assert_operator got.token, :>, held.token
    info = a.get(name, consistent: true)
    assert_equal [b.owner, got.token], [info.owner, info.token]
    got.release
  end

  def test_C03_only_endpoint_is_a_follower
    leader = Harness.leader
    follower = @cluster["nodes"].keys.find { |i| i.to_i != leader["id"] }
    c = Lockd::Client.new(@cluster["nodes"][follower], request_timeout: 3)
    lk = c.acquire(uniq("c03"), ttl: 30)
    assert_equal [leader["id"].to_s, leader["url"]], c.leader
    kill(follower.to_i)
    lk.renew
    lk2 = c.acquire(uniq("c03"), ttl: 30)
    lk.release
    lk2.release
  end

  def test_C04_load_balancer_with_a_node_down
    c = Lockd::Client.from_load_balancer(Harness.nginx, request_timeout: 3)
    leader = Harness.leader["id"]
    kill(@cluster["nodes"].keys.map(&:to_i).find { |i| i != leader })
    name = uniq("c04")
    tokens = 12.times.map do
      lk = c.acquire(name, ttl: 30)
      assert_equal lk.token, c.get(name, consistent: true).token
      lk.release
      lk.token
    end
    assert_equal tokens.sort, tokens
    assert_equal tokens.uniq, tokens
    assert_nil c.leader
  end

  def test_C05_cluster_file
    c = Lockd::Client.from_cluster_file(@cluster["cluster_file"], request_timeout: 3)
    lk = c.acquire(uniq("c05"), ttl: 30)
    leader = Harness.leader
    assert_equal [leader["id"].to_s, leader["url"]], c.leader
    assert_equal lk.token, c.get(lk.name).token
    lk.release
  end
end
