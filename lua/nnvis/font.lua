-- nnvis.font — a built-in 5x7 bitmap font for ASCII 32..126, so saved figures can carry
-- titles, captions and tick labels without any font library.  Each glyph is five column
-- bytes; bit 0 is the top row.  Cells are 6x8 pixels (one column and one row of spacing).
local M = { width = 6, height = 8 }

local glyphs = {   -- codes 32 ("space") .. 126 ("~"), in order
  "0000000000", "00005F0000", "0007000700", "147F147F14", "242A7F2A12", "2313086462",
  "3649552250", "0005030000", "001C224100", "0041221C00", "082A1C2A08", "08083E0808",
  "0050300000", "0808080808", "0060600000", "2010080402", "3E5149453E", "00427F4000",
  "4261514946", "2141454B31", "1814127F10", "2745454539", "3C4A494930", "0171090503",
  "3649494936", "064949291E", "0036360000", "0056360000", "0814224100", "1414141414",
  "0041221408", "0201510906", "324979413E", "7E1111117E", "7F49494936", "3E41414122",
  "7F4141221C", "7F49494941", "7F09090101", "3E41415132", "7F0808087F", "00417F4100",
  "2040413F01", "7F08142241", "7F40404040", "7F0204027F", "7F0408107F", "3E4141413E",
  "7F09090906", "3E4151215E", "7F09192946", "4649494931", "01017F0101", "3F4040403F",
  "1F2040201F", "7F2018207F", "6314081463", "0304780403", "6151494543", "007F414100",
  "0204081020", "0041417F00", "0402010204", "4040404040", "0001020400", "2054545478",
  "7F48444438", "3844444420", "384444487F", "3854545418", "087E090102", "081454543C",
  "7F08040478", "00447D4000", "2040443D00", "007F102844", "00417F4000", "7C04180478",
  "7C08040478", "3844444438", "7C14141408", "081414187C", "7C08040408", "4854545420",
  "043F444020", "3C4040207C", "1C2040201C", "3C4030403C", "4428102844", "0C5050503C",
  "4464544C44", "0008364100", "00007F0000", "0041360800", "0804081008",
}

local cols = {}
for k, hex in ipairs(glyphs) do
  local code = k + 31
  local c = {}
  for i = 1, 5 do c[i] = tonumber(hex:sub(2 * i - 1, 2 * i), 16) end
  cols[code] = c
end

--- five column bytes of the glyph for a character code ('?' for codes outside the font)
function M.glyph(code) return cols[code] or cols[63] end

--- width in pixels of s drawn at scale
function M.text_width(s, scale) return #s * M.width * (scale or 1) end

return M
