std = "max"
max_line_length = 130
files["spec"] = { std = "+busted" }
files["spec/server/api.lua"] = { globals = { "ngx" } }
files["lua/toolzz/ngx.lua"] = { globals = { "ngx" } }
files["lua/toolzz/ngxconn.lua"] = { globals = { "ngx" } }
exclude_files = { "build", "lua/toolzz/tzdata.lua" }
