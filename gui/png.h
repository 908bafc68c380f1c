// png.h: reading the OpenGL framebuffer back into a PNG file (stb_image_write).
#pragma once

#include <string>

namespace sp {

// Writes the w x h pixels at (x, y) of the currently bound read framebuffer
// (x, y from the top-left, as ImGui counts) to `path` as RGB PNG, creating
// its folder. fb_height is the framebuffer's height, to flip GL's bottom-left
// origin. Returns false and sets *err to one line on failure.
bool png_write_framebuffer(const std::string& path, int x, int y, int w, int h, int fb_height, std::string* err);

}  // namespace sp
