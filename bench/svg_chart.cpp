// Inline SVG line charts for tokend-bench's HTML report (see svg_chart.hpp).
#include "bench/svg_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tokend::bench {
namespace {

// The plot area inside the chart: room on the left for y labels, below for x labels and title.
constexpr double left_margin = 72;
constexpr double right_margin = 36;
constexpr double top_margin = 40;
constexpr double bottom_margin = 52;

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

struct frame {
  double x0, y0, w, h;  // the plot area, in pixels
  const chart& c;

  [[nodiscard]] double px(double x) const {
    const double span = c.x.max - c.x.min;
    return x0 + (span > 0 ? (std::clamp(x, c.x.min, c.x.max) - c.x.min) / span : 0) * w;
  }
  [[nodiscard]] double py(double y) const {
    const double span = c.y.max - c.y.min;
    return y0 + h - (span > 0 ? (std::clamp(y, c.y.min, c.y.max) - c.y.min) / span : 0) * h;
  }
};

std::string text(double x, double y, std::string_view anchor, std::string_view body,
                 std::string_view extra = {}, int size = 12) {
  std::string out = "<text x=\"" + number(x) + "\" y=\"" + number(y) + "\" text-anchor=\"" +
                    std::string(anchor) + "\" font-family=\"sans-serif\" font-size=\"" +
                    std::to_string(size) + "\"";
  if (!extra.empty()) out += " " + std::string(extra);
  return out + ">" + xml_escape(body) + "</text>";
}

std::string line(double x1, double y1, double x2, double y2, std::string_view stroke) {
  return "<line x1=\"" + number(x1) + "\" y1=\"" + number(y1) + "\" x2=\"" + number(x2) + "\" y2=\"" +
         number(y2) + "\" stroke=\"" + std::string(stroke) + "\"/>";
}

// Grid lines and labels of both axes, the frame, and the axis titles.
std::string axes(const frame& f) {
  std::string out = "<g class=\"axes\">";
  for (const auto& [v, label] : f.c.y.ticks) {
    out += line(f.x0, f.py(v), f.x0 + f.w, f.py(v), "#e3e3e3");
    out += text(f.x0 - 6, f.py(v) + 4, "end", label);
  }
  for (const auto& [v, label] : f.c.x.ticks) {
    out += line(f.px(v), f.y0, f.px(v), f.y0 + f.h, "#eeeeee");
    out += text(f.px(v), f.y0 + f.h + 16, "middle", label);
  }
  out += "<rect x=\"" + number(f.x0) + "\" y=\"" + number(f.y0) + "\" width=\"" + number(f.w) +
         "\" height=\"" + number(f.h) + "\" fill=\"none\" stroke=\"#888888\"/>";
  out += text(f.x0 + f.w / 2, f.y0 + f.h + 40, "middle", f.c.x.title);
  const std::string rotate = "transform=\"rotate(-90 16 " + number(f.y0 + f.h / 2) + ")\"";
  out += text(16, f.y0 + f.h / 2, "middle", f.c.y.title, rotate);
  return out + "</g>";
}

std::string polyline(const frame& f, const chart_series& s) {
  std::string out = "<g class=\"series\"><polyline fill=\"none\" stroke-width=\"2\" stroke=\"" +
                    xml_escape(s.color) + "\" points=\"";
  for (const auto& [x, y] : s.points) out += number(f.px(x)) + "," + number(f.py(y)) + " ";
  return out + "\"/></g>";
}

// The chart's title on the left of the top margin, the series' names on the right.
std::string heading(const frame& f) {
  std::string out = text(f.x0, 22, "start", f.c.title, "font-weight=\"bold\"", 14);
  double x = f.x0 + f.w;
  out += "<g class=\"legend\">";
  for (auto it = f.c.series.rbegin(); it != f.c.series.rend(); ++it) {
    const double label_width = 7.0 * static_cast<double>(it->name.size());
    x -= label_width;
    out += text(x, 22, "start", it->name);
    out += "<rect x=\"" + number(x - 16) + "\" y=\"14\" width=\"12\" height=\"8\" fill=\"" +
           xml_escape(it->color) + "\"/>";
    x -= 28;
  }
  return out + "</g>";
}

}  // namespace

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<std::pair<double, std::string>> nice_ticks(double max, int count, double& top,
                                                       std::string (*label)(double)) {
  if (!(max > 0) || !std::isfinite(max)) max = 1;
  const double raw = max / std::max(count, 1);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power * 10;
  for (const double m : {1.0, 2.0, 5.0}) {
    if (power * m >= raw) {
      step = power * m;
      break;
    }
  }
  std::vector<std::pair<double, std::string>> ticks;
  for (int i = 0; ticks.empty() || ticks.back().first < max * (1 - 1e-9); ++i) {
    ticks.emplace_back(step * i, label(step * i));
  }
  top = ticks.back().first;
  return ticks;
}

std::string render_svg(const chart& c) {
  const frame f{left_margin, top_margin, c.width - left_margin - right_margin,
                c.height - top_margin - bottom_margin, c};
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"" + xml_escape(c.id) + "\" width=\"" +
                    std::to_string(c.width) + "\" height=\"" + std::to_string(c.height) +
                    "\" viewBox=\"0 0 " + std::to_string(c.width) + " " + std::to_string(c.height) +
                    "\" role=\"img\" aria-label=\"" + xml_escape(c.title) + "\">";
  out += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>";
  out += heading(f);
  out += axes(f);
  for (const auto& s : c.series) out += polyline(f, s);
  return out + "</svg>";
}

}  // namespace tokend::bench
