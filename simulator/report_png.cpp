// report_png.cpp: a Drawing rasterized with cairo into a PNG (report_plot.h),
// on an image surface: no window, no display. Text uses cairo's own font
// selection (fontconfig), asking for DejaVu Sans as the SVG does. Built
// without cairo (CMake SPECPLAN_PNG=OFF, the GPU machine), it says so.
#include <cmath>
#include <ostream>

#include "simulator/report_plot.h"
#include "traces/trace_db.h"  // Error

#if SPECPLAN_HAVE_CAIRO
#include <cairo.h>

namespace sp {

bool plot_png_available() { return true; }

static void source(cairo_t* cr, Rgba c) { cairo_set_source_rgba(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0, c.a / 255.0); }

static void stroke(cairo_t* cr, const DrawItem& it) {
    if (!it.stroke.a) return;
    source(cr, it.stroke);
    cairo_set_line_width(cr, it.width);
    const double dash[] = {6, 4};
    cairo_set_dash(cr, dash, it.dashed ? 2 : 0, 0);
    cairo_stroke(cr);
}

// Fill then stroke the current path.
static void paint(cairo_t* cr, const DrawItem& it) {
    if (it.fill.a) {
        source(cr, it.fill);
        it.stroke.a ? cairo_fill_preserve(cr) : cairo_fill(cr);
    }
    stroke(cr, it);
    cairo_new_path(cr);
}

static void draw(cairo_t* cr, const DrawItem& it) {
    switch (it.kind) {
        case DRAW_RECT:
            cairo_rectangle(cr, it.xy[0], it.xy[1], it.xy[2] - it.xy[0], it.xy[3] - it.xy[1]);
            paint(cr, it);
            break;
        case DRAW_POLYLINE:
            for (size_t i = 0; i + 1 < it.xy.size(); i += 2)
                (i ? cairo_line_to : cairo_move_to)(cr, it.xy[i], it.xy[i + 1]);
            cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
            paint(cr, it);
            break;
        case DRAW_CIRCLE:
            cairo_new_sub_path(cr);
            cairo_arc(cr, it.xy[0], it.xy[1], it.xy[2], 0, 2 * M_PI);
            paint(cr, it);
            break;
        case DRAW_TEXT: {
            cairo_save(cr);
            cairo_set_font_size(cr, it.size);
            cairo_text_extents_t e;
            cairo_text_extents(cr, it.text.c_str(), &e);
            cairo_translate(cr, it.xy[0], it.xy[1]);
            if (it.vertical) cairo_rotate(cr, -M_PI / 2);
            cairo_move_to(cr, it.anchor < 0 ? 0 : it.anchor == 0 ? -e.x_advance / 2 : -e.x_advance, 0);
            source(cr, it.fill);
            cairo_show_text(cr, it.text.c_str());
            cairo_restore(cr);
            break;
        }
    }
}

static cairo_status_t to_stream(void* closure, const unsigned char* data, unsigned int length) {
    auto* out = static_cast<std::ostream*>(closure);
    out->write(reinterpret_cast<const char*>(data), length);
    return *out ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

void plot_write_png(std::ostream& out, const Drawing& d) {
    cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, d.width, d.height);
    cairo_t* cr = cairo_create(surface);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    for (const DrawItem& it : d.items) draw(cr, it);
    cairo_status_t status = cairo_status(cr);
    cairo_destroy(cr);
    if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_write_to_png_stream(surface, to_stream, &out);
    cairo_surface_destroy(surface);
    if (status != CAIRO_STATUS_SUCCESS)
        throw Error(std::string("plot: expected cairo to draw the PNG, got ") + cairo_status_to_string(status));
}

}  // namespace sp

#else

namespace sp {

bool plot_png_available() { return false; }

void plot_write_png(std::ostream&, const Drawing&) {
    throw Error("plot: PNG output needs cairo, and this build has none (CMake SPECPLAN_PNG=OFF); the SVGs are written");
}

}  // namespace sp

#endif
