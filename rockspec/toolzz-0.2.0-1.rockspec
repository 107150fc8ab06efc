rockspec_format = "3.0"
package = "toolzz"
version = "0.2.0-1"

source = {
  url = "git+https://github.com/toolzz/toolzz-lua.git",
  tag = "v0.2.0",
}

description = {
  summary = "Manage ToolzzAI agent scheduling integrations (Cal.com, Google Calendar) from Lua",
  detailed = [[
toolzz updates ToolzzAI's Cal.com integrations and Google Calendar functions:
schema validation with defaults, a strict JSON encoder, retries with backoff,
and a libcurl transport in C (toolzz.core), or nginx cosockets inside OpenResty.
]],
  homepage = "https://github.com/toolzz/toolzz-lua",
  issues_url = "https://github.com/toolzz/toolzz-lua/issues",
  license = "MIT",
  labels = { "http", "api", "calendar", "libcurl" },
}

dependencies = {
  "lua >= 5.1",
  "lua-cjson",
  "argparse", -- the toolzz command
}

-- Only the library is checked: a header check would miss multiarch include
-- directories (Debian's /usr/include/<triplet>/curl). If curl is somewhere
-- the compiler does not look by default, pass CURL_DIR, or CURL_INCDIR and
-- CURL_LIBDIR, to luarocks.
external_dependencies = {
  CURL = { library = "curl" },
}

build = {
  type = "builtin",
  modules = {
    ["toolzz.core"] = {
      sources = {
        "src/core.c", "src/buffer.c", "src/json.c", "src/check.c", "src/transport.c",
        "src/transport_multi.c", "src/transport_options.c", "src/transport_outcome.c", "src/signals.c",
        "src/digest.c", "src/file.c",
      },
      libraries = { "curl" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
    ["toolzz"] = "lua/toolzz/init.lua",
    ["toolzz.attempts"] = "lua/toolzz/attempts.lua",
    ["toolzz.batch"] = "lua/toolzz/batch.lua",
    ["toolzz.batch_drive"] = "lua/toolzz/batch_drive.lua",
    ["toolzz.batch_runs"] = "lua/toolzz/batch_runs.lua",
    ["toolzz.calls"] = "lua/toolzz/calls.lua",
    ["toolzz.checks"] = "lua/toolzz/checks.lua",
    ["toolzz.cli"] = "lua/toolzz/cli/init.lua",
    ["toolzz.cli.batch"] = "lua/toolzz/cli/batch.lua",
    ["toolzz.cli.call"] = "lua/toolzz/cli/call.lua",
    ["toolzz.cli.common"] = "lua/toolzz/cli/common.lua",
    ["toolzz.cli.doctor"] = "lua/toolzz/cli/doctor.lua",
    ["toolzz.cli.input"] = "lua/toolzz/cli/input.lua",
    ["toolzz.cli.line_diff"] = "lua/toolzz/cli/line_diff.lua",
    ["toolzz.cli.output"] = "lua/toolzz/cli/output.lua",
    ["toolzz.cli.plan_markdown"] = "lua/toolzz/cli/plan_markdown.lua",
    ["toolzz.cli.plan_text"] = "lua/toolzz/cli/plan_text.lua",
    ["toolzz.cli.plan_view"] = "lua/toolzz/cli/plan_view.lua",
    ["toolzz.cli.progress"] = "lua/toolzz/cli/progress.lua",
    ["toolzz.cli.sync"] = "lua/toolzz/cli/sync.lua",
    ["toolzz.client"] = "lua/toolzz/client.lua",
    ["toolzz.errors"] = "lua/toolzz/errors.lua",
    ["toolzz.hints"] = "lua/toolzz/hints.lua",
    ["toolzz.ngx"] = "lua/toolzz/ngx.lua",
    ["toolzz.ngxconn"] = "lua/toolzz/ngxconn.lua",
    ["toolzz.ngxhttp"] = "lua/toolzz/ngxhttp.lua",
    ["toolzz.operations"] = "lua/toolzz/operations.lua",
    ["toolzz.options"] = "lua/toolzz/options.lua",
    ["toolzz.patch"] = "lua/toolzz/patch.lua",
    ["toolzz.responses"] = "lua/toolzz/responses.lua",
    ["toolzz.retry"] = "lua/toolzz/retry.lua",
    ["toolzz.schema"] = "lua/toolzz/schema.lua",
    ["toolzz.sync"] = "lua/toolzz/sync/init.lua",
    ["toolzz.sync.apply"] = "lua/toolzz/sync/apply.lua",
    ["toolzz.sync.canonical"] = "lua/toolzz/sync/canonical.lua",
    ["toolzz.sync.diff"] = "lua/toolzz/sync/diff.lua",
    ["toolzz.sync.export"] = "lua/toolzz/sync/export.lua",
    ["toolzz.sync.json"] = "lua/toolzz/sync/json.lua",
    ["toolzz.sync.kinds"] = "lua/toolzz/sync/kinds.lua",
    ["toolzz.sync.load"] = "lua/toolzz/sync/load.lua",
    ["toolzz.sync.match"] = "lua/toolzz/sync/match.lua",
    ["toolzz.sync.plan"] = "lua/toolzz/sync/plan.lua",
    ["toolzz.tables"] = "lua/toolzz/tables.lua",
    ["toolzz.testing"] = "lua/toolzz/testing.lua",
    ["toolzz.transports"] = "lua/toolzz/transports.lua",
    ["toolzz.url"] = "lua/toolzz/url.lua",
    ["toolzz.tzdata"] = "lua/toolzz/tzdata.lua",
    ["toolzz.validate"] = "lua/toolzz/validate.lua",
  },
  install = {
    bin = { toolzz = "bin/toolzz" },
  },
  -- LuaLS definitions, into the rock's directory (luarocks show toolzz)
  copy_directories = { "types" },
}
