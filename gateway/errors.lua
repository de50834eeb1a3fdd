-- REST face of the gateway: every REST error gets the documented body
-- {"error", "detail", "correlation_id", ...}, every REST response gets an
-- x-correlation-id, and no gRPC plumbing header reaches a REST client.
--
-- Sits before the gRPC-JSON transcoder, so on the way back it sees the
-- transcoded response and the local replies of Envoy sent before a response
-- started (unknown path, upstream down or slow, body too large). A local
-- reply sent while a response is being encoded (the transcoder's response
-- size limit) skips the filters and keeps Envoy's plain text body.
-- Native gRPC responses pass untouched.

local STATE = "onboarding.gateway"

-- Stable error codes for responses that carry no x-error-body from the server.
local CODES = {
  [400] = "invalid_request",
  [401] = "unauthenticated",
  [403] = "permission_denied",
  [404] = "not_found",
  [405] = "method_not_allowed",
  [413] = "payload_too_large",
  [429] = "rate_limit_exceeded",
  [500] = "internal_error",
  [501] = "not_implemented",
  [503] = "service_unavailable",
  [504] = "upstream_timeout",
}

-- Details for errors whose body says nothing (such as an unknown path).
local DETAILS = {
  [404] = "No API endpoint matches this method and path.",
  [413] = "The request body is too large.",
  [503] = "The service is unavailable; try again later.",
  [504] = "The service did not answer in time.",
}

-- Longest detail copied from an Envoy or transcoder message.
local MAX_DETAIL = 512

local function is_grpc(content_type)
  return content_type ~= nil and content_type:find("^application/grpc") ~= nil
end

local function trim(text)
  return (text:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function percent_decode(text)
  return (text:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

local function json_string(text)
  -- Details may quote a client's bytes; anything outside ASCII becomes "?"
  -- so the body stays valid UTF-8 JSON whatever the client sent.
  local ascii = text:gsub("[\128-\255]", "?")
  local escaped = ascii:gsub('[%c"\\]', function(char)
    if char == '"' then return '\\"' end
    if char == "\\" then return "\\\\" end
    if char == "\n" then return "\\n" end
    return string.format("\\u%04x", char:byte())
  end)
  return '"' .. escaped .. '"'
end

-- Envoy sets x-request-id before any filter runs, so this only serves
-- replies that bypassed envoy_on_request, such as CORS preflights.
local seeded = false
local function new_id()
  if not seeded then
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
    seeded = true
  end
  local function hex(digits)
    return string.format("%0" .. digits .. "x", math.random(0, 16 ^ digits - 1))
  end
  return string.format("%s-%s-4%s-%x%s-%s%s", hex(8), hex(4), hex(3),
    math.random(8, 11), hex(3), hex(6), hex(6))
end

local function utf8_char(code)
  if code < 0x80 then
    return string.char(code)
  elseif code < 0x800 then
    return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
  end
  return string.char(0xE0 + math.floor(code / 0x1000),
    0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

-- JSON escapes that stand for a control character.
local UNESCAPE = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

-- The "message" string of the transcoder's {"code","message","details"} body,
-- decoded; nil when the body has none.
local function status_message(body_text)
  local start = select(2, body_text:find('"message"%s*:%s*"'))
  if start == nil then
    return nil
  end
  local out, i = {}, start + 1
  while i <= #body_text do
    local char = body_text:sub(i, i)
    if char == '"' then
      return table.concat(out)
    elseif char == "\\" then
      local escape = body_text:sub(i + 1, i + 1)
      if escape == "u" then
        out[#out + 1] = utf8_char(tonumber(body_text:sub(i + 2, i + 5), 16) or 63)
        i = i + 6
      else
        out[#out + 1] = UNESCAPE[escape] or escape
        i = i + 2
      end
    else
      out[#out + 1] = char
      i = i + 1
    end
  end
  return nil
end

-- The human-readable text of an error that did not come from the server:
-- the grpc-message of a transcoded status, the message of the transcoder's
-- status body, or the plain text of an Envoy local reply.
local function original_detail(status, grpc_message, body_text)
  local detail = grpc_message and percent_decode(grpc_message) or ""
  if detail == "" then
    detail = status_message(body_text) or body_text
  end
  detail = trim(detail:gsub("%s+", " ")):sub(1, MAX_DETAIL)
  if detail == "" then
    return DETAILS[status]
      or string.format("The request failed with HTTP status %d.", status)
  end
  return detail
end

local function error_body(status, detail, correlation_id)
  return string.format('{"error":%s,"detail":%s,"correlation_id":%s}',
    json_string(CODES[status] or "error"), json_string(detail),
    json_string(correlation_id))
end

local function strip_grpc_headers(headers)
  local doomed = {}
  for key, _ in pairs(headers) do
    if key:find("^grpc%-") then
      doomed[#doomed + 1] = key
    end
  end
  for _, key in ipairs(doomed) do
    headers:remove(key)
  end
  headers:remove("x-error-body")
end

-- HTTP allows header names that gRPC metadata does not (such as "a|b");
-- forwarded, they make the server refuse the whole call, so they are dropped.
local function drop_non_metadata_headers(headers)
  local doomed = {}
  for key, _ in pairs(headers) do
    if key:sub(1, 1) ~= ":" and key:find("[^0-9a-z_.%-]") then
      doomed[#doomed + 1] = key
    end
  end
  for _, key in ipairs(doomed) do
    headers:remove(key)
  end
end

function envoy_on_request(handle)
  local headers = handle:headers()
  drop_non_metadata_headers(headers)
  local metadata = handle:streamInfo():dynamicMetadata()
  metadata:set(STATE, "grpc", is_grpc(headers:get("content-type")))
  metadata:set(STATE, "correlation_id",
    headers:get("x-correlation-id") or headers:get("x-request-id") or new_id())
end

function envoy_on_response(handle)
  local state = handle:streamInfo():dynamicMetadata():get(STATE) or {}
  local headers = handle:headers()
  if state.grpc or (state.grpc == nil and is_grpc(headers:get("content-type"))) then
    return
  end

  local status = tonumber(headers:get(":status")) or 500
  local server_body = headers:get("x-error-body")
  local grpc_message = headers:get("grpc-message")
  local correlation_id = headers:get("x-correlation-id")
    or state.correlation_id or new_id()
  strip_grpc_headers(headers)
  headers:replace("x-correlation-id", correlation_id)
  if status < 400 then
    return
  end

  -- Headers are frozen once the body is buffered; setBytes() fixes the
  -- content-length itself.
  headers:replace("content-type", "application/json")
  local body = handle:body(true)
  if body == nil then
    -- Nothing to rewrite: the transcoder produced a bodiless error, which
    -- happens only when it cannot print the status it received.
    handle:logWarn("error response without a body; left as is")
    return
  end
  if server_body == nil then
    local detail = original_detail(status, grpc_message, body:getBytes(0, body:length()))
    server_body = error_body(status, detail, correlation_id)
  end
  body:setBytes(server_body)
end
