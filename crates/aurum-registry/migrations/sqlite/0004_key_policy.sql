-- Per-key policy: an expiry, a model scope and a request-rate limit.
--
-- `expires_at` (RFC 3339, NULL = never) is checked on every request; an expired key is refused
-- with its own error code. `scopes` is a JSON array of model names, where a trailing `*` makes a
-- prefix (`["credit-*", "fraud"]`); NULL means every model. `rate_limit_per_s` is the sustained
-- request rate one key may use on one replica (NULL = unlimited).

ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
ALTER TABLE api_keys ADD COLUMN rate_limit_per_s INTEGER;
