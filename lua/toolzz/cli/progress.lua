-- toolzz.cli.progress: the progress bar of `toolzz batch`, drawn on a
-- terminal: done/total, rate, time left and failures so far.
--
--   local bar = progress.new(io.stderr, total, core.now)
--   bar:update(done, failed)   -- redrawn at most every 0.1 s, at once after a clear
--   bar:finish(done, failed)   -- last frame and a newline
local floor, huge, format, rep = math.floor, math.huge, string.format, string.rep
local setmetatable = setmetatable

local _M = {}

local BAR_WIDTH = 24
local MIN_REDRAW = 0.1 -- seconds between frames
local CLEAR_LINE = "\r\27[K"
_M.CLEAR_LINE = CLEAR_LINE

-- Seconds as m:ss (or h:mm:ss).
local function clock(seconds)
  if seconds ~= seconds or seconds == huge or seconds < 0 then return "--:--" end
  seconds = floor(seconds + 0.5)
  local h, m, s = floor(seconds / 3600), floor(seconds / 60) % 60, seconds % 60
  if h > 0 then return format("%d:%02d:%02d", h, m, s) end
  return format("%d:%02d", m, s)
end
_M.clock = clock

-- One frame, without the line control characters.
function _M.render(done, total, failed, elapsed)
  local fraction = total > 0 and done / total or 1
  local filled = floor(fraction * BAR_WIDTH + 0.5)
  local rate = elapsed > 0 and done / elapsed or 0
  local eta = done >= total and 0 or (rate > 0 and (total - done) / rate or huge)
  local text = format("[%s%s] %d/%d %3d%%  %.1f/s  ETA %s",
    rep("#", filled), rep(".", BAR_WIDTH - filled), done, total, floor(fraction * 100), rate, clock(eta))
  if failed and failed > 0 then text = text .. format("  %d failed", failed) end
  return text
end

local Bar = {}
Bar.__index = Bar

function _M.new(out, total, now)
  return setmetatable({ out = out, total = total, now = now, started = now(), drawn = -huge }, Bar)
end

-- Draw the state if the last frame is old enough.
function Bar:update(done, failed, force)
  local t = self.now()
  if not force and not self.cleared and t - self.drawn < MIN_REDRAW and done < self.total then return end
  self.drawn, self.cleared = t, false
  self.out:write(CLEAR_LINE, _M.render(done, self.total, failed, t - self.started))
  self.out:flush()
end

-- Rub the bar out (before another line is written to the same terminal);
-- the next update draws it again at once.
function Bar:clear()
  if self.cleared then return end
  self.out:write(CLEAR_LINE)
  self.cleared = true
end

-- The last frame, left on screen.
function Bar:finish(done, failed)
  self:update(done, failed, true)
  self.out:write("\n")
  self.out:flush()
end

return _M
