# frozen_string_literal: true

module Lockd
  TOKEN_HEADER = "X-Lockd-Token"
  LOCK_HEADER = "X-Lockd-Lock"

  # +headers+ with the lock's token and name added, for a request to the
  # storage the lock protects.
  def self.fence(lock, headers = {})
    headers[TOKEN_HEADER] = lock.token.to_s
    headers[LOCK_HEADER] = lock.name
    headers
  end

  # The fencing token in a request's headers (any case), or nil.
  def self.token_from(headers)
    headers.each do |k, v|
      next unless k.to_s.casecmp?(TOKEN_HEADER)

      return Integer(v.to_s, 10)
    rescue ArgumentError
      return nil
    end
    nil
  end

  # For the storage side: remembers the highest token seen per resource and
  # admits a write only with a token at least that high. Thread-safe.
  class FenceGuard
    def initialize
      @mu = Mutex.new
      @highest = {}
    end

    def admit(resource, token)
      return false if token.nil?

      @mu.synchronize do
        return false if token < @highest.fetch(resource, 0)

        @highest[resource] = token
        true
      end
    end

    def highest(resource)
      @mu.synchronize { @highest[resource] }
    end
  end
end
