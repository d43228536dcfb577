-- wrk script for `make bench` (http): single transfers with unique Idempotency-Keys
-- and references between random accounts of one region. Env: TOKEN, ACCOUNTS (file of ids).
local ids = {}
for line in io.lines(os.getenv("ACCOUNTS")) do ids[#ids + 1] = line end
local token = os.getenv("TOKEN")
local counter = 0
local tag

function setup(thread)
  thread:set("tid", tostring(math.random(1, 1e9)))
end

function init(args)
  tag = tid .. "-" .. tostring(os.time())
  math.randomseed(tonumber(tid))
end

function request()
  counter = counter + 1
  local a = math.random(#ids)
  local b = math.random(#ids - 1)
  if b >= a then b = b + 1 end
  local key = "wrk-" .. tag .. "-" .. counter
  local body = string.format(
    '{"debit_account_id":"%s","credit_account_id":"%s","amount":%d,"currency":"EUR","reference":"%s"}',
    ids[a], ids[b], math.random(1, 10000), key)
  return wrk.format("POST", "/v1/transfers", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = key,
  }, body)
end

local errors = 0
function response(status, headers, body)
  if status ~= 201 then errors = errors + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("http_non_2xx=%d\n", summary.errors.status))
end
