// A small line chart drawn as inline SVG text, for tokend-bench's HTML report: axes with labelled
// ticks, one polyline per series and a legend. Pure formatting, no I/O; the page needs no script,
// font or style from anywhere else to show it.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokend::bench {

struct chart_axis {
  double min = 0;
  double max = 1;
  std::vector<std::pair<double, std::string>> ticks;  // position (in axis units) and its label
  std::string title;
};

struct chart_series {
  std::string name;
  std::string color;                              // any SVG colour, e.g. "#1f77b4"
  std::vector<std::pair<double, double>> points;  // (x, y) in axis units, in x order
};

struct chart {
  std::string id;  // the <svg>'s id, so a page can hold several charts
  std::string title;
  chart_axis x;
  chart_axis y;
  std::vector<chart_series> series;
  int width = 860;
  int height = 250;
};

// The <svg> element of the chart (its own xmlns, so the fragment is also a valid SVG document).
[[nodiscard]] std::string render_svg(const chart& c);

// Ticks at 0, step, 2 step... up to at least `max`, the step 1, 2 or 5 times a power of ten,
// about `count` of them; labels from `label`. Returns the ticks and sets `top` to the last one.
[[nodiscard]] std::vector<std::pair<double, std::string>> nice_ticks(double max, int count, double& top,
                                                                     std::string (*label)(double));

// Text safe inside an HTML or SVG element or a quoted attribute.
[[nodiscard]] std::string xml_escape(std::string_view s);

}  // namespace tokend::bench
