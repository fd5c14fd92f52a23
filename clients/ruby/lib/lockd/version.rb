# frozen_string_literal: true

module Lockd
  VERSION = "0.1.0"
end
