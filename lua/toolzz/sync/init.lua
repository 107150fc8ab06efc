-- toolzz.sync: integrations as code (CONTRACT Part 3). Module functions
-- read, check and write desired-state files; a client's `sync` group
-- (client.sync.plan / apply / export: toolzz.sync.plan, .apply, .export,
-- built in toolzz.client) talks to the API. Each piece is its own file
-- taking and returning plain tables: load (file -> desired), match, diff,
-- plan, apply, export, canonical.
local load = require "toolzz.sync.load"
local canonical = require "toolzz.sync.canonical"

local _M = {}

-- toolzz.sync.decode(text, base_dir) -> desired table, or nil, validation error
_M.decode = load.decode
-- toolzz.sync.load(path) -> desired table, or nil, err (config: unreadable; validation)
_M.load = load.load
-- toolzz.sync.encode(doc) -> canonical JSON text, or nil, message
_M.encode = canonical.encode
-- toolzz.sync.check(desired, base_dir) -> the checked copy, or nil, validation error
_M.check = load.check
-- toolzz.sync.read_text(path[, root]) -> the text of a { file } reference as
-- toolzz reads it (a regular file of at most 16 MiB, one trailing newline
-- removed, inside root when given), or nil, why
_M.read_text = load.read_text

return _M
