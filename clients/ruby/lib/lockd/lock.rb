# frozen_string_literal: true

module Lockd
  # A held lock. Belongs to one holder; its methods are thread-safe (the
  # keepalive thread renews it while the holder works).
  class Lock
    attr_reader :name, :owner, :token, :ttl, :valid_until, :lost_reason

    def initialize(client, name, owner, body, ttl, sent_at)
      @client = client
      @name = name
      @owner = owner
      @token = body["token"]
      @ttl = ttl
      @valid_until = ttl && (sent_at + ttl - Lockd.clock_margin(ttl))
      @mu = Mutex.new
      @stop_cv = ConditionVariable.new
      @stopped = false
      @lost_reason = nil
      @released = false
      @on_lost = nil
      @thread = nil
    end

    def inspect
      "#<Lockd::Lock name=#{@name.inspect} owner=#{@owner.inspect} token=#{@token} lost=#{!@lost_reason.nil?}>"
    end

    # True once the handle no longer holds the lock (final).
    def lost?
      if @lost_reason.nil? && !@released && @valid_until && Lockd.monotonic >= @valid_until
        mark_lost("the lease ran out before a renewal succeeded")
      end
      !@lost_reason.nil?
    end

    def released?
      @released
    end

    # Raises LockLost if the lock was lost, NotHeld if released.
    def check!
      raise LockLost, "lock #{@name.inspect} lost: #{@lost_reason}" if lost?
      raise NotHeld, "lock #{@name.inspect} was released" if @released

      self
    end
    alias check check!

    # +headers+ with this lock's fencing token (X-Lockd-Token) added.
    def fence(headers = {})
      Lockd.fence(self, headers)
    end

    # Renews the lease (a POST by the same owner). Raises LockLost if the
    # token changed or the lock is gone; Unavailable/OutcomeUnknown when no
    # answer came in time (the lease may still be valid).
    def renew(timeout: nil)
      raise NotHeld, "lock #{@name.inspect} was released" if @released

      check!
      dl = @client.deadline(timeout)
      dl = [dl, [@valid_until, Lockd.monotonic + 0.001].max].min if @valid_until
      do_renew(dl)
      self
    end

    # Renews in a background thread every ttl/3 until released. On loss the
    # callback (a proc or the block) runs once with the lock, lost? is true
    # and check! raises LockLost.
    def keepalive(on_lost: nil, &block)
      raise ArgumentError, "a lock without ttl has no lease to keep alive" unless @ttl

      cb = on_lost || block
      start = false
      already = false
      @mu.synchronize do
        @on_lost = cb
        already = !@lost_reason.nil?
        start = @thread.nil? && !@released && !already
        @thread = Thread.new { keepalive_loop } if start
      end
      cb&.call(self) if already
      self
    end

    # Releases the lock (DELETE with owner and token). Idempotent; a 404 or
    # 409 after a retried DELETE counts as released. On a handle already lost
    # it still sends the token-checked DELETE and raises nothing. Raises
    # NotHeld/TokenMismatch when the first attempt finds the lock not held
    # by this handle.
    def release(timeout: nil)
      return nil if @released

      stop_keepalive
      was_lost = !@lost_reason.nil?
      key = [@name, @owner]
      begin
        a = @client.call("DELETE", "/lock/#{@client.quote(@name)}", { "owner" => @owner, "token" => @token.to_s },
                         deadline: @client.deadline(timeout))
      rescue Error
        if was_lost
          done(key)
          return nil
        end
        @client.unreserve(key, self)
        raise
      end
      done(key)
      return nil if a.status == 200 || was_lost
      return nil if [404, 409].include?(a.status) && a.maybe_applied # our earlier attempt released it

      body = a.body.is_a?(Hash) ? a.body : {}
      case a.status
      when 404 then raise NotHeld.new("lock #{@name.inspect} was not locked (its lease had run out)", status: 404, body: a.body)
      when 409
        raise TokenMismatch.new("lock #{@name.inspect} is held under another token", status: 409, body: a.body) if body["error"] == "Token mismatch"

        raise NotHeld.new("lock #{@name.inspect} is held by #{body['owner'].inspect}", status: 409, body: a.body)
      else raise Lockd.error_for(a)
      end
    end

    # @api private: the renewal an acquire that waited makes before returning.
    def renew_for_acquire(deadline)
      do_renew(deadline)
    end

    # @api private: a token-checked DELETE whose failure is only logged.
    def delete_quietly(token)
      @client.call("DELETE", "/lock/#{@client.quote(@name)}", { "owner" => @owner, "token" => token.to_s },
                   deadline: Lockd.monotonic + [2.0, @client.request_timeout].min)
    rescue Error => e
      warn "lockd: releasing #{@name.inspect} token #{token} after a loss failed: #{e.message}" if $VERBOSE
    end

    private

    def mark_lost(reason)
      cb = nil
      @mu.synchronize do
        return if @lost_reason || @released

        @lost_reason = reason
        cb = @on_lost
        @stopped = true
        @stop_cv.broadcast
      end
      warn "lockd: lock #{@name.inspect} (token #{@token}) lost: #{reason}" if $VERBOSE
      begin
        cb&.call(self)
      rescue StandardError => e
        warn "lockd: on_lost callback of #{@name.inspect} raised #{e.class}: #{e.message}"
      end
    end

    def do_renew(deadline)
      params = { "owner" => @owner }
      params["ttl"] = Lockd.ms_param(@ttl) if @ttl
      a = @client.call("POST", "/lock/#{@client.quote(@name)}", params, deadline: deadline)
      if a.status == 409
        holder = a.body.is_a?(Hash) ? a.body["owner"] : nil
        mark_lost("held by #{holder.inspect}")
        raise LockLost.new("lock #{@name.inspect} lost: held by #{holder.inspect}", status: 409, body: a.body)
      end
      raise Lockd.error_for(a) unless a.status == 200

      tok = a.body["token"]
      if tok != @token
        # it had run out and this renewal took it anew: not the same lock
        mark_lost("the renewal answered token #{tok} instead of #{@token}")
        delete_quietly(tok)
        raise LockLost.new("lock #{@name.inspect} lost: token #{@token} is now #{tok}", status: 200, body: a.body)
      end
      @mu.synchronize do
        @valid_until = a.sent_at + @ttl - Lockd.clock_margin(@ttl) if @lost_reason.nil? && @ttl
      end
      check!
    end

    def keepalive_loop
      period = @ttl / 3.0
      next_at = Lockd.monotonic + period
      loop do
        @mu.synchronize do
          wake = [next_at, @valid_until].min
          until @stopped
            left = wake - Lockd.monotonic
            break if left <= 0

            @stop_cv.wait(@mu, left)
          end
        end
        return if @stopped || lost?

        begin
          do_renew(@valid_until)
          next_at = Lockd.monotonic + period
        rescue LockLost
          return
        rescue Error
          next_at = Lockd.monotonic + [period, 0.1].min # retry while the lease lasts
        end
      end
    end

    def stop_keepalive
      t = nil
      @mu.synchronize do
        @stopped = true
        @stop_cv.broadcast
        t = @thread
      end
      t.join(@client.request_timeout + 1) if t && t != Thread.current
    end

    def done(key)
      @mu.synchronize { @released = true }
      @client.unreserve(key, self)
    end
  end
end
