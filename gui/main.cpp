// main.cpp: `specplan-gui [SCENARIO] [--db FILE] [--live FILE] [--screenshot PNG] [--panel NAME] [--size WxH]`.
//
// A GLFW window with an OpenGL 3.3 core context, Dear ImGui's GLFW and
// OpenGL3 backends, and the dashboard (app.h) drawn into it each frame.
//
// Headless mode (--screenshot) opens a hidden window, renders into an
// offscreen framebuffer of the requested size, waits until the sweep and the
// timeline have landed, renders a few settled frames, writes the PNG and
// exits. Under Xvfb it needs no display. A scenario or database that fails to
// load is drawn in the window as it would be interactively, and the exit
// status is then 1 with the error on stderr.
//
// Exit codes: 0 success, 1 a failed load or window, 2 bad command line.
#define GLFW_INCLUDE_GLEXT
#define GL_GLEXT_PROTOTYPES
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <vector>

#include "git_rev.h"
#include "gui/app.h"
#include "gui/png.h"

using namespace sp;

static void glfw_error(int code, const char* what) { std::fprintf(stderr, "specplan-gui: GLFW %d: %s\n", code, what); }

// DejaVu Sans when installed (fonts-dejavu-core), with the Greek letters and
// the maths and arrow signs the panels print; else ImGui's built-in font.
static void load_font(ImGuiIO& io) {
    static const char* const candidates[] = {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"};
    static ImVector<ImWchar> ranges;
    ImFontGlyphRangesBuilder b;
    b.AddRanges(io.Fonts->GetGlyphRangesDefault());
    static const ImWchar extra[] = {0x0370, 0x03FF,   // Greek: alpha, gamma, tau, Theta
                                    0x2000, 0x206F,   // punctuation: en dash, ellipsis, thin space
                                    0x2190, 0x21FF,   // arrows
                                    0x2200, 0x22FF,   // maths: sum, product, <=, approx
                                    0x25A0, 0x25FF,   // geometric shapes: play and step buttons
                                    0};
    b.AddRanges(extra);
    b.BuildRanges(&ranges);
    for (const char* path : candidates)
        if (std::filesystem::exists(path) && io.Fonts->AddFontFromFileTTF(path, 15.0f, nullptr, ranges.Data)) return;
    io.Fonts->AddFontDefault();
}

static void style_setup() {
    ImGui::StyleColorsDark();
    ImGuiStyle& s = ImGui::GetStyle();
    s.WindowRounding = 0;
    s.FrameRounding = 3;
    s.GrabRounding = 3;
    s.TabRounding = 3;
    s.ItemSpacing = ImVec2(8, 5);
}

// The offscreen target of headless mode: a framebuffer with one colour renderbuffer.
struct Offscreen {
    GLuint fbo = 0, color = 0;
};

static bool offscreen_create(Offscreen& o, int w, int h) {
    glGenFramebuffers(1, &o.fbo);
    glGenRenderbuffers(1, &o.color);
    glBindRenderbuffer(GL_RENDERBUFFER, o.color);
    glRenderbufferStorage(GL_RENDERBUFFER, GL_RGBA8, w, h);
    glBindFramebuffer(GL_FRAMEBUFFER, o.fbo);
    glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, o.color);
    return glCheckFramebufferStatus(GL_FRAMEBUFFER) == GL_FRAMEBUFFER_COMPLETE;
}

int main(int argc, char** argv) {
    CLI::App cli{"specplan-gui: the specplan dashboard (throughput against per-user speed under speculative decoding)"};
    cli.set_version_flag("--version", "specplan-gui " SPECPLAN_GIT_REV);
    std::string scenario, db, live, screenshot, panel_arg = "frontier", size_arg = "1600x1000";
    cli.add_option("scenario", scenario, "scenario TOML (default: scenarios/default.toml)");
    cli.add_option("--db", db, "trace database for the Traces panel (default: the scenario's trace)");
    cli.add_option("--live", live, "a `specplan live --json` report: its points on the Frontier, its errors in Fidelity");
    cli.add_option("--screenshot", screenshot, "render off-screen, write this PNG and exit");
    cli.add_option("--panel", panel_arg,
                   "panel shown: frontier, latency, plan, acceptance, timeline, traces, explain, fidelity");
    cli.add_option("--size", size_arg, "window size in pixels, WxH (default 1600x1000)");
    bool frame_stats = false;
    cli.add_flag("--frame-stats", frame_stats, "on exit, print frame times, overall and while a sweep ran");
    try {
        cli.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return cli.exit(e);
        std::fprintf(stderr, "specplan-gui: %s (see --help)\n", e.what());
        return 2;
    }
    Panel panel;
    if (!panel_parse(panel_arg, &panel)) {
        std::fprintf(stderr,
                     "specplan-gui: --panel: expected frontier, latency, plan, acceptance, timeline, traces, explain or "
                     "fidelity, got "
                     "\"%s\"\n",
                     panel_arg.c_str());
        return 2;
    }
    int width = 0, height = 0;
    char tail = 0;
    if (std::sscanf(size_arg.c_str(), "%dx%d%c", &width, &height, &tail) != 2 || width < 320 || height < 240 ||
        width > 8192 || height > 8192) {
        std::fprintf(stderr, "specplan-gui: --size: expected WxH with W in 320..8192 and H in 240..8192, got \"%s\"\n",
                     size_arg.c_str());
        return 2;
    }
    if (scenario.empty()) {
        scenario = "scenarios/default.toml";
        if (!std::filesystem::exists(scenario)) scenario = SPECPLAN_SOURCE_DIR "/scenarios/default.toml";
    }
    const bool headless = !screenshot.empty();
    std::shared_ptr<const LiveRun> live_run;  // checked before any window opens: a bad file is one line
    if (!live.empty()) {
        try {
            live_run = std::make_shared<const LiveRun>(live_run_load(live));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "specplan-gui: --live: %s\n", e.what());
            return 2;
        }
    }

    glfwSetErrorCallback(glfw_error);
    if (!glfwInit()) {
        std::fprintf(stderr, "specplan-gui: cannot open a window (no display? headless: xvfb-run specplan-gui ... "
                             "--screenshot out.png)\n");
        return 1;
    }
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
    glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
    glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
    if (headless) glfwWindowHint(GLFW_VISIBLE, GLFW_FALSE);
    GLFWwindow* window = glfwCreateWindow(width, height, "specplan", nullptr, nullptr);
    if (!window) {
        std::fprintf(stderr, "specplan-gui: cannot create an OpenGL 3.3 window\n");
        glfwTerminate();
        return 1;
    }
    glfwMakeContextCurrent(window);
    glfwSwapInterval(1);

    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr;   // every start looks the same; the layout is fixed anyway
    load_font(io);
    style_setup();
    ImGui_ImplGlfw_InitForOpenGL(window, true);
    ImGui_ImplOpenGL3_Init("#version 330 core");

    Offscreen off;
    if (headless && !offscreen_create(off, width, height)) {
        std::fprintf(stderr, "specplan-gui: cannot create a %dx%d offscreen framebuffer\n", width, height);
        return 1;
    }

    int rc = 0;
    {
        AppState app;
        app.panel = panel;
        if (!db.empty()) app_open_traces(app, db);
        if (live_run) {
            app.live = live_run;
            app.live_loads++;
        }
        app_open_scenario(app, scenario);

        using clock = std::chrono::steady_clock;
        const auto t0 = clock::now();
        int settled = 0;
        // --frame-stats: frame intervals in ms, split by whether a sweep was running
        std::vector<double> frames_busy, frames_idle;
        auto last_frame = clock::now();
        while (!glfwWindowShouldClose(window) && !app.quit) {
            // Redraw continuously while something moves (a sweep, a debounce,
            // the timeline playing); otherwise sleep until an event or 4 Hz.
            const bool moving = !app_idle(app) || app.timeline_playing || app.progress.total > 0;
            if (headless || moving)
                glfwPollEvents();
            else
                glfwWaitEventsTimeout(0.25);

            ImGui_ImplOpenGL3_NewFrame();
            ImGui_ImplGlfw_NewFrame();
            if (headless) io.DisplaySize = ImVec2(float(width), float(height)), io.DisplayFramebufferScale = ImVec2(1, 1);
            ImGui::NewFrame();
            app_poll(app);
            app_frame(app);
            ImGui::Render();

            int fb_w = width, fb_h = height;
            if (!headless) glfwGetFramebufferSize(window, &fb_w, &fb_h);
            glBindFramebuffer(GL_FRAMEBUFFER, off.fbo);   // 0 (the window) unless headless
            glViewport(0, 0, fb_w, fb_h);
            glClearColor(0.09f, 0.09f, 0.10f, 1.0f);
            glClear(GL_COLOR_BUFFER_BIT);
            ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
            for (const PngRequest& r : plot_take_png_requests()) {
                std::string err;
                plot_export_status = png_write_framebuffer(r.path, r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0, fb_h, &err)
                                         ? "wrote " + r.path
                                         : err;
            }

            const auto now = clock::now();
            (app.progress.total > 0 ? frames_busy : frames_idle)
                .push_back(std::chrono::duration<double, std::milli>(now - last_frame).count());
            last_frame = now;

            if (headless) {
                // A few frames after everything landed: tables and auto-fitted
                // plots size themselves over the first frames they appear in.
                settled = app_idle(app) ? settled + 1 : 0;
                if (settled >= 4) {
                    std::string err;
                    if (!png_write_framebuffer(screenshot, 0, 0, width, height, height, &err)) {
                        std::fprintf(stderr, "specplan-gui: %s\n", err.c_str());
                        rc = 1;
                    }
                    for (const std::string* e : {&app.file_error, &app.scenario_error, &app.traces.error})
                        if (!e->empty()) {
                            std::fprintf(stderr, "specplan-gui: %s\n", e->c_str());
                            rc = 1;
                        }
                    break;
                }
                if (clock::now() - t0 > std::chrono::minutes(5)) {
                    std::fprintf(stderr, "specplan-gui: %s: the sweep did not finish within 5 minutes\n",
                                 scenario.c_str());
                    rc = 1;
                    break;
                }
                if (!app_idle(app)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            } else {
                glfwSwapBuffers(window);
            }
        }

        if (frame_stats)
            for (auto* v : {&frames_busy, &frames_idle}) {
                if (v->empty()) continue;
                std::sort(v->begin(), v->end());
                double sum = 0;
                for (double x : *v) sum += x;
                const double n = static_cast<double>(v->size());
                std::printf("frames %s: %zu, mean %.1f ms (%.0f fps), p90 %.1f ms, max %.1f ms\n",
                            v == &frames_busy ? "while sweeping" : "otherwise", v->size(), sum / n, 1000.0 * n / sum,
                            (*v)[v->size() * 9 / 10], v->back());
            }
    }

    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
    ImGui::DestroyContext();
    glfwDestroyWindow(window);
    glfwTerminate();
    return rc;
}
