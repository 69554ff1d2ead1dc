-- What each API token may do: a comma-separated list of read, write and secrets. Tokens made
-- before scopes existed keep NULL, which means all three, so they go on doing what they did;
-- `token list` marks them so they can be replaced with narrower ones.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
