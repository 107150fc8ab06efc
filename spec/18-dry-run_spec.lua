-- Part 2 "Dry run": reads are performed, writes are validated and encoded
-- but not sent, and come back as { dry_run, method, url, body }.
local H = require "helpers"
local cjson = require "cjson"

local S = H.stand_in

describe("dry run", function()
  local client, real
  before_each(function()
    S.reset()
    client = H.client { dry_run = true }
    real = H.client()
  end)
  after_each(function() client:close(); real:close() end)

  it("a write sends nothing and returns the exact request", function()
    local res = assert(client.gcal.update(H.UUID, H.gcal_body()))
    assert.same({ "body", "dry_run", "method", "url" }, (function()
      local keys = {}
      for k in pairs(res) do keys[#keys + 1] = k end
      table.sort(keys)
      return keys
    end)())
    assert.is_true(res.dry_run)
    assert.equals("PUT", res.method)
    assert.equals(H.env.http_url .. "/api/v1/functions/" .. H.UUID, res.url)
    assert.equals(0, S.stats().requests)
    assert(real.gcal.update(H.UUID, H.gcal_body()))
    assert.equals(S.last().body, res.body, "the very bytes a real call sends")
  end)

  it("creates and duplicates are not sent either", function()
    local id = S.put_record("function", H.gcal_body())
    local c = assert(client.calcom.create(H.calcom_create_body()))
    assert.equals("POST", c.method)
    assert.equals(H.env.cf_http_url .. "/api/v1/calcom/integration", c.url)
    assert.equals(H.API_KEY, cjson.decode(c.body).apiKey)
    local d = assert(client.gcal.duplicate(id))
    assert.same({ dry_run = true, method = "POST", body = "",
                  url = H.env.http_url .. "/api/v1/functions/duplicate/" .. id }, d)
    assert.equals(0, S.stats().requests)
  end)

  it("reads are performed", function()
    local id = S.put_record("function", H.gcal_body())
    assert.equals(id, assert(client.gcal.get(id)).id)
    assert.equals(1, #assert(client.gcal.list(H.UNIT)))
    assert.equals(2, S.stats().requests)
  end)

  it("a patch performs its GET and returns the PUT it would send", function()
    local id = S.put_record("calcom", H.calcom_create_body())
    local res = assert(client.calcom.patch(id, { prompt = "only 30 min" }))
    assert.equals("PUT", res.method)
    assert.equals(H.env.http_url .. "/api/v1/calcom/integration/" .. id, res.url)
    assert.equals("only 30 min", cjson.decode(res.body).prompt)
    assert.equals(1, S.stats().requests)
    assert.equals(0, S.writes())
    assert.equals("Agende reuniões de 30 minutos.", assert(real.calcom.get(id)).prompt)
  end)

  it("still validates", function()
    local res, err = client.calcom.update(H.UUID, H.calcom_body { timezone = "Nowhere" })
    assert.is_nil(res)
    assert.equals("validation", err.kind)
  end)

  it("in a batch too", function()
    local id = S.put_record("calcom", H.calcom_create_body())
    local results = assert(client.batch { { "calcom.patch", id, { title = "x" } }, { "calcom", H.UUID, H.calcom_body() },
                                          { "calcom.get", id } })
    assert.equals("PUT", results[1].res.method)
    assert.is_true(results[2].res.dry_run)
    assert.equals(id, results[3].res.id)
    assert.equals(0, S.writes())
  end)
end)
