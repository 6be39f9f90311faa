-- POST a body of BODY_SIZE bytes (set by the harness through the environment).
local size = tonumber(os.getenv("BODY_SIZE") or "1024")
wrk.method = "POST"
wrk.body = string.rep("a", size)
wrk.headers["Content-Type"] = "application/octet-stream"
