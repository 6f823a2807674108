--- nnvis.interactive — a figure drawn through nnvis.canvas as interactive HTML: its SVG with
-- a small inline script (no network, nothing fetched) that shows the value under the pointer
-- (the data points the drawing recorded with Canvas:datum: a line plot's points, a
-- histogram's bars, a heatmap's cells), zooms with the wheel around the pointer, pans by
-- dragging and resets on a double click.  The notebook (text/html outputs, nbconvert's HTML
-- too) and the report use it; PNG stays for terminals and files.
--
--   local html = require("nnvis.draw.interactive").html(canvas)   -- a <div> fragment
local M = {}

local count = 0

-- a JSON string (the labels are nnvis's own text, but escape everything a script needs)
local function json_string(s) return require("nnvis.io.json").string(s, true) end

-- the script, once per figure, addressed to its root element (the points on root.nnvisPoints)
local SCRIPT = [[
(function(){var root=document.getElementById('%s');if(!root||root.nnvisReady)return;root.nnvisReady=1;
var svg=root.querySelector('svg'),tip=root.querySelector('.nnvis-tip'),pts=%s,W=%s,H=%s;
root.nnvisPoints=pts;var vb={x:0,y:0,w:W,h:H},drag=null;
svg.setAttribute('viewBox','0 0 '+W+' '+H);
function set(){svg.setAttribute('viewBox',vb.x+' '+vb.y+' '+vb.w+' '+vb.h);root.setAttribute('data-zoom',(W/vb.w).toFixed(3));}
function at(e){var r=svg.getBoundingClientRect();return{x:vb.x+(e.clientX-r.left)/r.width*vb.w,y:vb.y+(e.clientY-r.top)/r.height*vb.h,r:r};}
svg.addEventListener('mousemove',function(e){var p=at(e);
 if(drag){vb.x=drag.x-(e.clientX-drag.cx)/p.r.width*vb.w;vb.y=drag.y-(e.clientY-drag.cy)/p.r.height*vb.h;set();return;}
 var best=-1,bd=1e300;for(var i=0;i<pts.length;i++){var dx=pts[i][0]-p.x,dy=pts[i][1]-p.y,d=dx*dx+dy*dy;if(d<bd){bd=d;best=i;}}
 var lim=14*vb.w/p.r.width,q=root.getBoundingClientRect();
 if(best>=0&&bd<=lim*lim){tip.textContent=pts[best][2];tip.style.display='block';
  tip.style.left=(e.clientX-q.left+12)+'px';tip.style.top=(e.clientY-q.top+12)+'px';root.setAttribute('data-hover',pts[best][2]);}
 else{tip.style.display='none';root.removeAttribute('data-hover');}});
svg.addEventListener('mouseleave',function(){tip.style.display='none';drag=null;});
svg.addEventListener('wheel',function(e){e.preventDefault();var p=at(e),f=e.deltaY<0?0.8:1.25;
 vb.x=p.x-(p.x-vb.x)*f;vb.y=p.y-(p.y-vb.y)*f;vb.w*=f;vb.h*=f;set();},{passive:false});
svg.addEventListener('mousedown',function(e){drag={cx:e.clientX,cy:e.clientY,x:vb.x,y:vb.y};e.preventDefault();});
window.addEventListener('mouseup',function(){drag=null;});
svg.addEventListener('dblclick',function(){vb={x:0,y:0,w:W,h:H};set();});})();
]]

local STYLE = "position:relative;display:inline-block;line-height:0"
local TIP = "position:absolute;display:none;pointer-events:none;background:rgba(255,255,255,0.95);" ..
  "border:1px solid #999;border-radius:3px;padding:2px 6px;font:12px DejaVu Sans,sans-serif;" ..
  "line-height:1.4;white-space:nowrap;color:#222;z-index:10"

-- Cairo's own ids (glyph-0-1, clip-1, surface5, image7, ...), the same in every SVG it writes
local CAIRO_ID = { glyph = true, clip = true, surface = true, image = true, pattern = true, mask = true, source = true }

--- wrap(svg, w, h [, points [, opts]]) -> the HTML fragment of any SVG text of w x h points
--- (nnvis's diagram too): points {x, y, label} answer a hover; opts.id, opts.style (the root
--- element's extra CSS, e.g. "width:100%")
function M.wrap(svg, w, h, points, opts)
  opts = opts or {}
  count = count + 1
  local id = opts.id or string.format("nnvis-fig-%d-%d", count, math.random(1, 1e9))
  svg = svg:gsub("^<%?xml[^>]*>%s*", "")
  -- Cairo names its glyphs and clip paths glyph-0-1, clip-1, ... in every SVG: inlined beside
  -- others in one page, each use of #glyph-0-1 would draw the first SVG's glyph.  Cairo's ids
  -- get the figure's own prefix (others, like the diagram's node ids, stay).
  local p = id .. "-"
  local function pre(name) return CAIRO_ID[name:match("^%a+")] and (p .. name) or name end
  svg = svg:gsub('id="([^"]+)"', function(n) return 'id="' .. pre(n) .. '"' end)
    :gsub('href="#([^"]+)"', function(n) return 'href="#' .. pre(n) .. '"' end)
    :gsub("url%(#([^)]+)%)", function(n) return "url(#" .. pre(n) .. ")" end)
  local pts = {}
  for i, d in ipairs(points or {}) do
    pts[i] = string.format("[%.2f,%.2f,%s]", d[1], d[2], json_string(d[3]))
  end
  return table.concat {
    '<div class="nnvis-interactive" id="', id, '" style="', STYLE, opts.style and (";" .. opts.style) or "", '">', svg,
    '<div class="nnvis-tip" style="', TIP, '"></div>',
    "<script>", SCRIPT:format(id, "[" .. table.concat(pts, ",") .. "]", string.format("%g", w),
      string.format("%g", h)), "</script></div>",
  }
end

--- html(canvas [, opts]) -> an HTML fragment: the canvas's SVG, its data points and the
--- script; opts.id names the root element (default a fresh one)
function M.html(cv, opts)
  return M.wrap(cv:svg(), cv.w, cv.h, cv.data, opts)
end

return M
