# frozen_string_literal: true

module Lockd
  # Base class of every error. +status+ is the HTTP status (nil when there
  # was no answer), +body+ the server's JSON answer (a Hash, or nil).
  class Error < StandardError
    attr_reader :status, :body

    def initialize(message, status: nil, body: nil)
      super(message)
      @status = status
      @body = body
    end
  end

  # The lock is held by someone else (409 after +wait+ ran out).
  class LockHeld < Error
    attr_reader :name, :holder

    def initialize(message, name: nil, holder: nil, status: 409, body: nil)
      super(message, status: status, body: body)
      @name = name
      @holder = holder
    end
  end

  # The handle no longer holds its lock.
  class LockLost < Error; end
  # A release found the lock not held by this handle on its first attempt.
  class NotHeld < Error; end
  # A release found the lock held by this owner under another token.
  class TokenMismatch < NotHeld; end
  # 400/413: the server's message. Never retried.
  class BadRequest < Error; end
  # 401. Never retried.
  class Unauthorized < Error; end
  # 403. Never retried.
  class Forbidden < Error; end
  # No usable answer before the deadline; the request certainly changed nothing.
  class Unavailable < Error; end
  # As Unavailable, but a write may have been applied.
  class OutcomeUnknown < Unavailable; end
end
