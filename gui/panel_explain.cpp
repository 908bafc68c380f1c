// panel_explain.cpp: placeholder until the panel lands.
#include "gui/app.h"

namespace sp {

void panel_explain(AppState&) { ImGui::TextUnformatted("(explain: not yet drawn)"); }

}  // namespace sp
