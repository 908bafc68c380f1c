// png.cpp: see png.h.
#include "gui/png.h"

#define GL_GLEXT_PROTOTYPES
#include <GLFW/glfw3.h>

#include <filesystem>
#include <stb_image_write.h>
#include <vector>

namespace sp {

bool png_write_framebuffer(const std::string& path, int x, int y, int w, int h, int fb_height, std::string* err) {
    if (w <= 0 || h <= 0 || x < 0 || y < 0 || y + h > fb_height) {
        *err = path + ": nothing to write (empty or off-screen rectangle)";
        return false;
    }
    std::vector<unsigned char> px(static_cast<size_t>(w) * h * 3);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadPixels(x, fb_height - y - h, w, h, GL_RGB, GL_UNSIGNED_BYTE, px.data());
    if (glGetError() != GL_NO_ERROR) {
        *err = path + ": glReadPixels failed";
        return false;
    }
    std::error_code ec;
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    stbi_flip_vertically_on_write(1);  // GL rows run bottom-up
    if (!stbi_write_png(path.c_str(), w, h, 3, px.data(), w * 3)) {
        *err = path + ": cannot write the PNG";
        return false;
    }
    return true;
}

}  // namespace sp
