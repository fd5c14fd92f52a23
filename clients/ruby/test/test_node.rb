# frozen_string_literal: true

# Scenario rows R01..R11 of clients/README.md, against one real lockd node.
require_relative "test_helper"

class TestNode < Minitest::Test
  include Support

  def url = Harness.node_url
  def client = Lockd::Client.new(url)

  def test_R01_acquire_get_release
    c = client
    name = uniq("r01")
    lk = c.acquire(name, ttl: 30)
    assert_equal name, lk.name
    assert_equal c.owner, lk.owner
    assert_operator lk.token, :>, 0
    info = c.get(name)
    assert_equal [c.owner, lk.token, 30_000], [info.owner, info.token, info.ttl_ms]
    assert_equal lk.token, c.get(name, consistent: true).token
    lk.release
    assert lk.released?
    assert_nil c.get(name)
  end

  def test_R02_held_by_another
    a = client
    b = client
    name = uniq("r02")
    lk = a.acquire(name, ttl: 30)
    assert_nil b.try_acquire(name)
    e = assert_raises(Lockd::LockHeld) { b.acquire(name, wait: 0) }
    assert_equal a.owner, e.holder
    ran = []
    assert_raises(Lockd::LockHeld) { b.with_lock(name, ttl: 5) { ran << 1 } }
    assert_empty ran
    lk.release
  end

  def test_R03_wait_handoff
    a = client
    b = client
    name = uniq("r03")
    lk = a.acquire(name, ttl: 30)
    t = Thread.new { b.acquire(name, ttl: 2, wait: 20) }
    # released only once b's POST has arrived (a waiter in the queue) and has
    # waited longer than its own lease: the scenario, not a synchronisation
    assert wait_for(10) { metric(url, "lockd_waiters") >= 1 }
    sleep 2.5
    lk.release
    got = t.value
    assert_operator got.token, :>, lk.token
    assert_equal b.owner, got.owner
    refute got.lost?, got.lost_reason # its lease counts from after the hand-off
    assert_equal got.token, a.get(name).token
    got.release
  end

  def test_R04_renew_keeps_token
    c = client
    lk = c.acquire(uniq("r04"), ttl: 5)
    v0 = lk.valid_until
    t0 = Lockd.monotonic
    lk.renew
    assert_operator lk.valid_until, :>, v0
    assert_operator lk.valid_until, :<=, Lockd.monotonic + 5
    assert_operator lk.valid_until, :>=, t0 + 5 - Lockd.clock_margin(5)
    assert_equal lk.token, c.get(lk.name).token
    lk.release
  end

  def test_R05_keepalive_beyond_ttl
    c = client
    lk = c.acquire(uniq("r05"), ttl: 0.5).keepalive
    finish = Lockd.monotonic + 2.0
    while Lockd.monotonic < finish
      refute lk.lost?, lk.lost_reason
      assert_equal lk.token, c.get(lk.name).token
      sleep 0.1
    end
    lk.release
    assert_nil c.get(lk.name)
  end

  def test_R06_expiry_detected
    c = client
    other = client
    lk = c.acquire(uniq("r06"), ttl: 0.3)
    assert_operator lk.valid_until, :<=, Lockd.monotonic + 0.3
    assert wait_for(10) { other.try_acquire(lk.name, ttl: 30) }
    assert lk.lost?
    assert_raises(Lockd::LockLost) { lk.check! }
    assert_raises(Lockd::LockLost) { lk.renew }
    lk.release
    assert_equal other.owner, other.get(lk.name).owner
  end

  def test_R07_list_all_pages
    c = client
    prefix = "#{uniq('r07')}-"
    names = (0...23).map { |i| format("%s%02d", prefix, i) }
    locks = names.map { |n| c.acquire(n, ttl: 60) }
    assert_equal names, c.list(prefix: prefix, page_size: 5).map(&:name)
    locks.each(&:release)
    assert_empty c.list(prefix: prefix).to_a
  end

  def test_R08_status_and_owners
    a = client
    b = client
    st = a.status
    assert_equal "leader", st["role"]
    refute_empty st["members"]
    refute_equal a.owner, b.owner
    assert_match(/\A[A-Za-z0-9$._-]+:#{Process.pid}:[0-9a-f]+\z/, a.owner)
  end

  def test_R09_release_idempotent_and_one_handle_per_name
    c = client
    name = uniq("r09")
    lk = c.acquire(name, ttl: 30)
    assert_nil c.try_acquire(name)
    t = Thread.new { c.acquire(name, ttl: 30, wait: 10) }
    lk.release
    lk.release
    second = t.value
    assert_operator second.token, :>, lk.token
    second.release
  end

  def test_R10_readme_example_runs
    code = File.read(File.expand_path("../README.md", __dir__))[/```ruby\n(.*?)```/m, 1]
    refute_nil code
    out, st = Open3.capture2e({ "LOCKD_URL" => url }, "ruby", "-I", File.expand_path("../lib", __dir__),
                              "-e", code)
    assert st.success?, out
    assert_includes out, "ran the job with token"
    assert_includes out, "refused a stale token"
  end

  def test_R11_bad_name
    e = assert_raises(Lockd::BadRequest) { client.acquire("x" * 129) }
    assert_equal "Name is too long (129 bytes > max of 128)", e.message
  end
end
