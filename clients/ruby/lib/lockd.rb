# frozen_string_literal: true

# lockd: a client for the lockd distributed lock service (standard library
# only). Behaviour on loss, retry and failover: clients/README.md.
require_relative "lockd/version"
require_relative "lockd/errors"
require_relative "lockd/fencing"
require_relative "lockd/client"
require_relative "lockd/lock"
