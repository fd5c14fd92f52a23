# frozen_string_literal: true

require_relative "lib/lockd/version"

Gem::Specification.new do |s|
  s.name = "lockd"
  s.version = Lockd::VERSION
  s.summary = "Client for the lockd distributed lock service"
  s.description = "Leases with keepalive, fencing tokens, leader following and bounded, typed retries " \
                  "for lockd. Standard library only."
  s.authors = ["lockd developers"]
  s.files = Dir["lib/**/*.rb"] + ["README.md"]
  s.require_paths = ["lib"]
  s.required_ruby_version = ">= 3.1"
end
