# frozen_string_literal: true

require "json"
require "monitor"
require "net/http"
require "openssl"
require "securerandom"
require "socket"
require "uri"

module Lockd
  DEFAULT_PORT = 2080
  RETRYABLE = [502, 503, 504].freeze
  DEAD_FOR = 1.0      # seconds an endpoint that failed to connect is skipped
  STATUS_EVERY = 1.0  # at most one /status refresh per second to learn members

  # A lock as GET /lock/:name and GET /locks show it.
  LockInfo = Struct.new(:name, :locked, :owner, :token, :acquired_at_ms, :ttl_ms, :expires_in_ms,
                        keyword_init: true) do
    def self.from(h)
      new(**members.to_h { |m| [m, h[m.to_s]] })
    end
  end

  def self.monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # host:pid:random, restricted to the API's owner alphabet.
  def self.default_owner
    host = Socket.gethostname.gsub(/[^A-Za-z0-9._-]/, "_")
    host = "host" if host.empty?
    owner = "#{host}:#{Process.pid}:#{SecureRandom.hex(6)}"
    owner.length > 128 ? owner[-128..] : owner
  end

  # What valid_until keeps back from the TTL: 50 ms plus 1 % of it.
  def self.clock_margin(ttl)
    0.05 + ttl * 0.01
  end

  def self.ms_param(sec)
    "#{[0, (sec * 1000).round].max}ms"
  end

  # One base URL with a small pool of idle keep-alive Net::HTTP sessions.
  class Endpoint
    attr_reader :scheme, :host, :port, :prefix, :key

    def initialize(url, client)
      u = URI.parse(url)
      raise ArgumentError, "unsupported scheme in #{url.inspect}" unless %w[http https].include?(u.scheme)

      @scheme = u.scheme
      @host = u.hostname || "127.0.0.1"
      @port = u.port
      @prefix = u.path.to_s.chomp("/")
      @key = "#{@scheme}://#{@host}:#{@port}#{@prefix}"
      @client = client
      @idle = []
      @mu = Mutex.new
    end

    def take(fresh = false)
      unless fresh
        h = @mu.synchronize { @idle.pop }
        return [h, true] if h
      end
      h = Net::HTTP.new(@host, @port)
      h.max_retries = 0 # Net::HTTP would resend idempotent requests by itself
      h.keep_alive_timeout = 30
      if @scheme == "https"
        h.use_ssl = true
        h.verify_mode = OpenSSL::SSL::VERIFY_PEER
        h.ca_file = @client.ca_file if @client.ca_file
      end
      [h, false]
    end

    def give(h)
      keep = @mu.synchronize { @idle.size < @client.pool_size && @idle.push(h) }
      h.finish if !keep && h.started?
    rescue IOError
      nil
    end

    def close
      idle = @mu.synchronize { @idle.slice!(0..) }
      idle.each { |h| h.finish if h.started? rescue IOError }
    end
  end

  Answer = Struct.new(:status, :headers, :body, :sent_at, :maybe_applied, :attempts)

  class ConnError < StandardError
    attr_reader :cause_error, :sent

    def initialize(cause, sent)
      super("#{cause.class}: #{cause.message}")
      @cause_error = cause
      @sent = sent
    end
  end

  CONN_ERRORS = [SystemCallError, IOError, EOFError, SocketError, Timeout::Error, Net::OpenTimeout,
                 Net::ReadTimeout, Net::WriteTimeout, Net::HTTPBadResponse, OpenSSL::SSL::SSLError].freeze

  # A lockd client, safe to share between threads.
  #
  # +endpoints+: a URL ("http://host:port"; "host:port" means http) or an
  # array of them. See also Client.from_cluster_file and
  # Client.from_load_balancer. Durations are seconds (Numeric).
  class Client
    attr_reader :owner, :connect_timeout, :request_timeout, :ca_file, :pool_size, :follow_leader

    def initialize(endpoints, owner: nil, token: nil, connect_timeout: 2.0, request_timeout: 10.0,
                   ca_file: nil, follow_leader: true, pool_size: 4, backoff_base: 0.05, backoff_cap: 2.0,
                   members: nil)
      endpoints = [endpoints] if endpoints.is_a?(String)
      raise ArgumentError, "at least one endpoint is needed" if endpoints.nil? || endpoints.empty?

      @owner = owner || Lockd.default_owner
      @connect_timeout = connect_timeout.to_f
      @request_timeout = request_timeout.to_f
      @ca_file = ca_file
      @follow_leader = follow_leader
      @pool_size = pool_size
      @backoff_base = backoff_base
      @backoff_cap = backoff_cap
      @auth = token ? "Bearer #{token}" : nil
      @mu = Monitor.new
      @held_cv = @mu.new_cond
      @eps = {}
      @configured = endpoints.map { |e| endpoint(e) }
      @scheme = @configured.first.scheme
      @members = {}
      (members || {}).each { |id, addr| @members[id.to_s] = endpoint(addr) }
      @leader_id = nil
      @leader_ep = nil
      @dead = {}
      @cur = 0
      @next_status = 0.0
      @max_index = 0
      @held = {}
      @rnd = Random.new
    end

    # The original's cluster file: {"101":"host:port",...} (a missing port
    # means 2080; an entry may be {"http":"host:port","raft":...}).
    def self.from_cluster_file(path, scheme: "http", **opts)
      data = JSON.parse(File.read(path))
      members = {}
      data.each do |id, v|
        addr = v.is_a?(Hash) ? v["http"] : v
        addr = "#{addr}:#{DEFAULT_PORT}" unless addr.include?(":")
        members[id.to_s] = "#{scheme}://#{addr}"
      end
      new(members.values.sort, members: members, **opts)
    end

    # One URL of a load balancer: every request goes through it.
    def self.from_load_balancer(url, **opts)
      new([url], follow_leader: false, **opts)
    end

    def close
      @eps.each_value(&:close)
    end

    # [id, url] of the leader this client currently follows, or nil.
    def leader
      @mu.synchronize { @leader_id && @leader_ep ? [@leader_id, @leader_ep.key] : nil }
    end

    # The highest X-Lockd-Applied-Index this client has seen (0: none).
    def applied_index
      @mu.synchronize { @max_index }
    end

    # -- operations ---------------------------------------------------------

    # Acquires +name+, waiting up to +wait+ seconds. Returns a Lock; raises
    # LockHeld when it stays held.
    def acquire(name, ttl: nil, wait: 0, owner: nil, timeout: nil)
      lk = do_acquire(name, ttl, wait, owner, timeout)
      raise LockHeld.new("lock #{name.inspect} is held by this client already", name: name,
                                                                                holder: owner || @owner) unless lk

      lk
    end

    # One attempt without waiting: a Lock, or nil when held.
    def try_acquire(name, ttl: nil, owner: nil, timeout: nil)
      do_acquire(name, ttl, 0, owner, timeout)
    rescue LockHeld
      nil
    end

    # The scoped form: runs the block only once the lock is held (else
    # LockHeld is raised and the block does not run), keeps the lease alive
    # while it runs, releases at the end, and raises LockLost at the end if
    # the lock was lost meanwhile. Returns the block's value.
    def with_lock(name, ttl: 30, wait: 0, owner: nil, keepalive: true, on_lost: nil, timeout: nil)
      lk = acquire(name, ttl: ttl, wait: wait, owner: owner, timeout: timeout)
      lk.keepalive(on_lost: on_lost) if keepalive && lk.ttl
      ok = false
      begin
        result = yield lk
        ok = true
      ensure
        lost = lk.lost?
        begin
          lk.release
        rescue Error
          raise if ok && !lost
        end
      end
      raise LockLost, "lock #{name.inspect} was lost while the block ran: #{lk.lost_reason}" if lost

      result
    end

    # The lock's state (LockInfo) or nil when it is not locked.
    def get(name, consistent: false, timeout: nil)
      a = call("GET", "/lock/#{quote(name)}", consistent ? { "consistent" => "true" } : nil,
               deadline: deadline(timeout), read: true)
      return nil if a.status == 404
      raise Lockd.error_for(a) unless a.status == 200

      LockInfo.from(a.body)
    end

    # Every lock (name order), one page at a time, following +next+. An
    # Enumerator without a block.
    def list(prefix: nil, page_size: 100, timeout: nil)
      return enum_for(:list, prefix: prefix, page_size: page_size, timeout: timeout) unless block_given?

      after = nil
      loop do
        q = { "limit" => page_size.to_s }
        q["prefix"] = prefix if prefix
        q["after"] = after if after
        a = call("GET", "/locks", q, deadline: deadline(timeout), read: true)
        raise Lockd.error_for(a) unless a.status == 200

        (a.body["locks"] || []).each { |d| yield LockInfo.from(d) }
        after = a.body["next"]
        break if after.nil?
      end
      nil
    end

    # GET /status of the node the client talks to (a Hash).
    def status(timeout: nil)
      a = call("GET", "/status", nil, deadline: deadline(timeout))
      raise Lockd.error_for(a) unless a.status == 200

      a.body
    end

    # -- internals used by Lock ---------------------------------------------

    def deadline(timeout, extra = 0.0)
      Lockd.monotonic + (timeout.nil? ? @request_timeout + extra : timeout.to_f)
    end

    def quote(name)
      URI.encode_www_form_component(name).gsub("+", "%20")
    end

    def unreserve(key, lock = nil)
      @mu.synchronize do
        if @held.key?(key) && (lock.nil? || @held[key].equal?(lock))
          @held.delete(key)
          @held_cv.broadcast
        end
      end
    end

    # Sends until an answer that is not 502/503/504 arrives or the deadline
    # passes. With +wait_until+ the +wait+ field is resent reduced.
    def call(method, path, params, deadline:, read: false, wait_until: nil)
      attempt = 0
      maybe_applied = false
      last = "no attempt"
      loop do
        now = Lockd.monotonic
        left = deadline - now
        break if left <= 0

        q = (params || {}).dup
        per = @request_timeout
        if wait_until
          w = [0.0, wait_until - now].max
          q["wait"] = Lockd.ms_param(w)
          per += w
        end
        full = q.empty? ? path : "#{path}?#{URI.encode_www_form(q)}"
        headers = {}
        if read
          idx = @mu.synchronize { @max_index }
          headers["X-Lockd-Min-Index"] = idx.to_s if idx.positive?
        end
        ep = pick
        attempt += 1
        begin
          a = exchange(ep, method, full, headers, [per, left].min)
        rescue ConnError => e
          mark_dead(ep)
          maybe_applied ||= e.sent && method != "GET"
          last = "#{ep.key}: #{e.message}"
          pause(attempt, deadline, nil)
          next
        end
        observe(ep, a.headers, a.status)
        if RETRYABLE.include?(a.status)
          body = a.body.is_a?(Hash) ? a.body : {}
          maybe_applied = true if method != "GET" && (a.status != 503 || body["outcome"] == "unknown")
          last = "#{ep.key}: #{a.status} #{body['error']}"
          ra = retry_after(a.headers["retry-after"])
          break if ra && Lockd.monotonic + ra >= deadline # honouring it would pass the deadline

          pause(attempt, deadline, ra)
          next
        end
        a.maybe_applied = maybe_applied
        a.attempts = attempt
        return a
      end
      msg = "#{method} #{path}: no answer before the deadline after #{attempt} attempt(s) (last: #{last})"
      raise(maybe_applied ? OutcomeUnknown.new(msg) : Unavailable.new(msg))
    end

    private

    def endpoint(url)
      unless url.include?("://") # "host" or "host:port": lockd's default port
        url = "http://#{url}"
        url += ":#{DEFAULT_PORT}" unless url.match?(/:\d+\z/)
      end
      ep = Endpoint.new(url, self)
      @mu.synchronize { @eps[ep.key] ||= ep }
    end

    def do_acquire(name, ttl, wait, owner, timeout)
      owner ||= @owner
      wait = wait.to_f
      wait_until = Lockd.monotonic + wait
      dl = deadline(timeout, wait)
      key = [name, owner]
      @mu.synchronize do
        # one handle per (name, owner) in this client: a second acquire
        # through the server would be a renewal, not a new lock
        while @held.key?(key)
          left = wait_until - Lockd.monotonic
          return nil if left <= 0

          @held_cv.wait(left)
        end
        @held[key] = nil
      end
      begin
        params = { "owner" => owner }
        params["ttl"] = Lockd.ms_param(ttl) if ttl
        a = call("POST", "/lock/#{quote(name)}", params, deadline: dl, wait_until: wait_until)
        if a.status == 409
          holder = a.body.is_a?(Hash) ? a.body["owner"] : nil
          raise LockHeld.new("lock #{name.inspect} is held by #{holder.inspect}", name: name, holder: holder,
                                                                                  body: a.body)
        end
        raise Lockd.error_for(a) unless a.status == 200

        lk = Lock.new(self, name, owner, a.body, ttl&.to_f, a.sent_at)
        if ttl && lk.valid_until - Lockd.monotonic < ttl / 2.0
          # it waited in the queue: the lease counted from the request's
          # sending is mostly spent, so count it from a renewal sent now
          begin
            lk.renew_for_acquire(deadline(nil))
          rescue LockLost
            raise
          rescue Error
            lk.delete_quietly(lk.token)
            raise
          end
        end
        @mu.synchronize { @held[key] = lk }
        lk
      rescue Exception # rubocop:disable Lint/RescueException
        unreserve(key)
        raise
      end
    end

    def pick
      now = Lockd.monotonic
      @mu.synchronize do
        return @leader_ep if @follow_leader && @leader_ep && @dead.fetch(@leader_ep.key, 0) <= now

        cands = @configured.dup
        @members.each_value { |m| cands << m unless cands.include?(m) } if @follow_leader
        n = cands.size
        n.times do |i|
          ep = cands[(@cur + i) % n]
          if @dead.fetch(ep.key, 0) <= now
            @cur = (@cur + i) % n
            return ep
          end
        end
        cands.min_by { |e| @dead.fetch(e.key, 0) }
      end
    end

    def mark_dead(ep)
      @mu.synchronize do
        @dead[ep.key] = Lockd.monotonic + DEAD_FOR
        if @leader_ep.equal?(ep)
          @leader_ep = nil
          @leader_id = nil
        end
      end
    end

    def observe(ep, headers, status)
      idx = headers["x-lockd-applied-index"]
      lid = headers["x-lockd-leader"]
      refresh = false
      @mu.synchronize do
        @max_index = idx.to_i if idx&.match?(/\A\d+\z/) && idx.to_i > @max_index
        @dead.delete(ep.key)
        return unless @follow_leader

        if lid && lid != @leader_id
          @leader_id = lid
          @leader_ep = @members[lid]
        elsif lid.nil? && status == 503
          @leader_id = nil
          @leader_ep = nil
        end
        if @leader_id && @leader_ep.nil? && Lockd.monotonic >= @next_status
          @next_status = Lockd.monotonic + STATUS_EVERY
          refresh = true
        end
      end
      refresh_members(ep) if refresh
    end

    def refresh_members(ep)
      a = exchange(ep, "GET", "/status", {}, [@request_timeout, 2.0].min)
      return unless a.status == 200 && a.body.is_a?(Hash)

      @mu.synchronize do
        (a.body["members"] || []).each do |m|
          @members[m["id"].to_s] = endpoint("#{@scheme}://#{m['address']}") if m.is_a?(Hash) && m["address"]
        end
        @leader_ep = @members[@leader_id] if @leader_id
      end
    rescue ConnError, Error
      nil
    end

    def exchange(ep, method, path, headers, timeout, fresh: false)
      http, reused = ep.take(fresh)
      sent = false
      begin
        unless http.started?
          http.open_timeout = [@connect_timeout, timeout].min
          http.start
        end
        http.read_timeout = timeout
        http.write_timeout = timeout
        req = Net::HTTPGenericRequest.new(method, false, true, ep.prefix + path,
                                          { "Accept" => "application/json" })
        req["Authorization"] = @auth if @auth
        headers.each { |k, v| req[k] = v }
        sent_at = Lockd.monotonic
        sent = true
        res = http.request(req)
      rescue OpenSSL::SSL::SSLError => e
        safe_finish(http)
        raise Error, "#{ep.key}: TLS certificate verification failed: #{e.message}" if e.message.include?("certificate verify failed")

        raise ConnError.new(e, sent)
      rescue *CONN_ERRORS => e
        safe_finish(http)
        if reused && sent && (e.is_a?(EOFError) || e.is_a?(Errno::ECONNRESET) || e.is_a?(Errno::EPIPE))
          # a kept-alive connection the server had closed: once more on a new one
          return exchange(ep, method, path, headers, timeout, fresh: true)
        end

        raise ConnError.new(e, sent)
      end
      if res["connection"].to_s.casecmp?("close")
        safe_finish(http)
      else
        ep.give(http)
      end
      body = begin
        res.body.nil? || res.body.empty? ? nil : JSON.parse(res.body)
      rescue JSON::ParserError
        res.body
      end
      hdrs = {}
      res.each_header { |k, v| hdrs[k.downcase] = v }
      Answer.new(res.code.to_i, hdrs, body, sent_at, false, 1)
    end

    def safe_finish(http)
      http.finish if http.started?
    rescue IOError
      nil
    end

    def pause(attempt, deadline, retry_after)
      d = @mu.synchronize { @rnd.rand * [@backoff_cap, @backoff_base * (2**attempt)].min }
      d = [d, retry_after].max if retry_after
      d = [d, deadline - Lockd.monotonic].min
      sleep(d) if d.positive?
    end

    def retry_after(v)
      return nil if v.nil? || v.empty?

      [0.0, Float(v)].max
    rescue ArgumentError
      nil
    end
  end

  def self.error_for(a)
    body = a.body.is_a?(Hash) ? a.body : {}
    msg = body["error"] || (a.body.is_a?(String) ? a.body : "HTTP #{a.status}")
    case a.status
    when 400, 413 then BadRequest.new(msg, status: a.status, body: a.body)
    when 401 then Unauthorized.new(msg, status: a.status, body: a.body)
    when 403 then Forbidden.new(msg, status: a.status, body: a.body)
    else Error.new("HTTP #{a.status}: #{msg}", status: a.status, body: a.body)
    end
  end
end
