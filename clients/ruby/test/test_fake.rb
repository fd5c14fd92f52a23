# frozen_string_literal: true

# Scenario rows F01..F14 of clients/README.md, against the scripted fake server.
require_relative "test_helper"

class TestFake < Minitest::Test
  OK = { "echo_token" => true }.freeze

  def setup
    @fake = Harness.fake
  end

  def lock_body(token: 5, ttl_ms: nil, owner: "me")
    { "name" => "job", "locked" => true, "owner" => owner, "token" => token, "ttl_ms" => ttl_ms,
      "expires_in_ms" => ttl_ms }
  end

  def client(fake = @fake, **kw)
    Lockd::Client.new(fake.url, **{ request_timeout: 2.0, owner: "me" }.merge(kw))
  end

  def posts = @fake.requests.select { |r| r["method"] == "POST" }

  def test_F01_504_then_success
    @fake.script([{ "status" => 504, "body" => { "error" => "Consensus timeout", "outcome" => "unknown" } }, OK])
    c = client(owner: nil)
    lk = c.acquire("job", ttl: 30)
    assert_equal 7, lk.token
    p = posts
    assert_equal 2, p.size
    assert_equal p[0]["query"], p[1]["query"]
    assert_equal c.owner, p[0]["query"]["owner"]
    assert_equal "30000ms", p[0]["query"]["ttl"]
  end

  def test_F02_reset_after_request_sent
    @fake.script([{ "action" => "reset" }, OK])
    assert_equal 7, client.acquire("job", ttl: 10).token
    p = posts
    assert_equal 2, p.size
    assert_equal p[0]["query"], p[1]["query"]
  end

  def test_F03_retry_after_honoured
    @fake.script([{ "status" => 503, "body" => { "error" => "No leader" }, "headers" => { "Retry-After" => "1" } }, OK])
    client(request_timeout: 5).acquire("job")
    p = posts
    assert_equal 2, p.size
    assert_operator p[1]["t"] - p[0]["t"], :>=, 0.95
  end

  def test_F04_retry_after_beyond_deadline
    @fake.script([{ "status" => 503, "body" => { "error" => "No leader" }, "headers" => { "Retry-After" => "30" } }])
    t0 = Lockd.monotonic
    e = assert_raises(Lockd::Unavailable) { client.acquire("job", timeout: 1.0) }
    refute_kind_of Lockd::OutcomeUnknown, e
    assert_operator Lockd.monotonic - t0, :<, 3.0
    assert_equal 1, posts.size
  end

  def test_F05_renewal_answers_another_token
    @fake.script([{ "status" => 200, "body" => lock_body(token: 5, ttl_ms: 30_000) },
                  { "status" => 200, "body" => lock_body(token: 9, ttl_ms: 30_000) },
                  { "status" => 200, "body" => { "name" => "job", "locked" => false } }])
    lk = client.acquire("job", ttl: 30)
    assert_raises(Lockd::LockLost) { lk.renew }
    assert lk.lost?
    assert_raises(Lockd::LockLost) { lk.check! }
    d = @fake.requests.select { |r| r["method"] == "DELETE" }
    assert_equal 1, d.size
    assert_equal "9", d[0]["query"]["token"]
    lk.release
  end

  def test_F06_keepalive_loss_fires_callback_once
    @fake.script([{ "status" => 200, "body" => lock_body(token: 5, ttl_ms: 600) },
                  { "status" => 409, "body" => { "error" => "Lock conflict", "name" => "job", "owner" => "other" } }])
    lk = client.acquire("job", ttl: 0.6)
    calls = Queue.new
    lk.keepalive { |l| calls << l }
    assert_same lk, Timeout.timeout(5) { calls.pop }
    lk.release # joins the keepalive thread: no second callback can follow
    assert calls.empty?
    assert lk.lost?
    assert_includes lk.lost_reason, "other"
    assert_raises(Lockd::LockLost) { lk.check! }
  end

  def test_F07_slow_endpoint_deadline
    @fake.script([{ "delay" => 5, "status" => 200, "body" => lock_body }])
    c = client
    t0 = Lockd.monotonic
    assert_raises(Lockd::OutcomeUnknown) { c.acquire("job", timeout: 1.0) }
    assert_operator Lockd.monotonic - t0, :<, 2.5
    t0 = Lockd.monotonic
    e = assert_raises(Lockd::Unavailable) { c.get("job", timeout: 1.0) }
    refute_kind_of Lockd::OutcomeUnknown, e
    assert_operator Lockd.monotonic - t0, :<, 2.5
  end

  def test_F08_400_never_retried
    @fake.script([{ "status" => 400, "body" => { "error" => "ttl must be between 100ms and 24h" } }])
    e = assert_raises(Lockd::BadRequest) { client.acquire("job", ttl: 0.01) }
    assert_equal "ttl must be between 100ms and 24h", e.message
    assert_equal 1, @fake.requests.size
    @fake.script([{ "status" => 409, "body" => { "error" => "Lock conflict", "name" => "job", "owner" => "them" } }])
    e = assert_raises(Lockd::LockHeld) { client.acquire("job") }
    assert_equal "them", e.holder
    assert_nil client.try_acquire("job")
    assert_equal 2, @fake.requests.size
  end

  def test_F09_release_outcomes
    c = client
    @fake.script([{ "status" => 200, "body" => lock_body(token: 5) },
                  { "status" => 504, "body" => { "error" => "Consensus timeout", "outcome" => "unknown" } },
                  { "status" => 404, "body" => { "error" => "Not Found", "name" => "job", "locked" => false } }])
    c.acquire("job").release
    d = @fake.requests.select { |r| r["method"] == "DELETE" }
    assert_equal 2, d.size
    d.each { |r| assert_equal({ "owner" => "me", "token" => "5" }, r["query"]) }
    @fake.script([{ "status" => 200, "body" => lock_body(token: 5) },
                  { "status" => 404, "body" => { "error" => "Not Found", "name" => "job", "locked" => false } }])
    assert_raises(Lockd::NotHeld) { c.acquire("job").release }
    @fake.script([{ "status" => 200, "body" => lock_body(token: 5) },
                  { "status" => 409, "body" => { "error" => "Token mismatch", "name" => "job", "owner" => "me" } }])
    assert_raises(Lockd::TokenMismatch) { c.acquire("job").release }
  end

  def test_F10_outcome_unknown_only_at_deadline
    @fake.script([{ "status" => 504, "body" => { "error" => "Consensus timeout", "outcome" => "unknown" } }])
    t0 = Lockd.monotonic
    assert_raises(Lockd::OutcomeUnknown) { client.acquire("job", timeout: 1.0) }
    el = Lockd.monotonic - t0
    assert_operator el, :>=, 0.9
    assert_operator el, :<, 2.5
    assert_operator posts.size, :>=, 2
    @fake.script([{ "status" => 503, "body" => { "error" => "No leader" } }])
    e = assert_raises(Lockd::Unavailable) { client.acquire("job", timeout: 0.5) }
    refute_kind_of Lockd::OutcomeUnknown, e
  end

  def test_F11_min_index_sent_on_reads
    @fake.script([{ "status" => 200, "body" => lock_body, "headers" => { "X-Lockd-Applied-Index" => "42" } },
                  { "status" => 200, "body" => lock_body, "headers" => { "X-Lockd-Applied-Index" => "40" } },
                  { "status" => 200, "body" => lock_body }])
    c = client
    c.acquire("job")
    c.get("job")
    c.get("job")
    r = @fake.requests
    refute r[0]["headers"].key?("x-lockd-min-index")
    assert_equal "42", r[1]["headers"]["x-lockd-min-index"]
    assert_equal "42", r[2]["headers"]["x-lockd-min-index"]
    assert_equal 42, c.applied_index
  end

  def test_F12_bearer_token_and_auth_errors
    c = client(token: "s3cret")
    @fake.script([{ "status" => 401, "body" => { "error" => "Unauthorized" } }])
    assert_raises(Lockd::Unauthorized) { c.acquire("job") }
    @fake.script([{ "status" => 403, "body" => { "error" => "Forbidden" } }])
    assert_raises(Lockd::Forbidden) { c.get("job") }
    r = @fake.requests
    assert_equal 1, r.size
    assert_equal "Bearer s3cret", r[0]["headers"]["authorization"]
  end

  def test_F13_https_with_ca_file
    f = Harness.fake(tls: true)
    f.script([OK])
    assert_equal 7, Lockd::Client.new(f.url, ca_file: f.ca_file, owner: "me").acquire("job").token
    t0 = Lockd.monotonic
    e = assert_raises(Lockd::Error) { Lockd::Client.new(f.url, request_timeout: 5).acquire("job") }
    assert_includes e.message, "certificate"
    assert_operator Lockd.monotonic - t0, :<, 2.0
  end

  def test_F14_scoped_form_raises_after_loss
    @fake.script([{ "status" => 200, "body" => lock_body(token: 5, ttl_ms: 600) },
                  { "status" => 409, "body" => { "error" => "Lock conflict", "name" => "job", "owner" => "other" } }])
    ran = []
    assert_raises(Lockd::LockLost) do
      client.with_lock("job", ttl: 0.6) do |lk|
        ran << lk.token
        deadline = Lockd.monotonic + 5
        sleep 0.02 until lk.lost? || Lockd.monotonic > deadline
      end
    end
    assert_equal [5], ran
  end
end
