-- Send DEPTH requests back to back in one write and wait for all the answers.
local depth = tonumber(os.getenv("DEPTH") or "16")
init = function(args)
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end
request = function()
   return req
end
