//! Charts as inline SVG, rendered on the server: no script, no external assets.
//!
//! Each chart is a `<figure>` with an `role="img"` SVG whose accessible name describes it, and a
//! caption; every page that shows a chart also shows its numbers in a table, so the chart is
//! never the only way to read them. Labels go through [`esc`].

use std::fmt::Write as _;

use crate::html::{esc, num};

/// One line of a chart.
pub struct Line<'a> {
    pub label: &'a str,
    pub values: Vec<f64>,
    /// A CSS colour (a literal of this crate).
    pub color: &'static str,
    pub dashed: bool,
}

/// A shaded band between two series (a forecast interval).
pub struct Band<'a> {
    pub label: &'a str,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    pub color: &'static str,
}

/// A horizontal reference line (a threshold).
pub struct Rule<'a> {
    pub label: &'a str,
    pub y: f64,
    pub color: &'static str,
}

/// Everything a line chart draws; x positions are the indices of `x_labels`.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_labels: Vec<String>,
    pub lines: Vec<Line<'a>>,
    pub bands: Vec<Band<'a>>,
    pub rules: Vec<Rule<'a>>,
    /// Forces the y range to include these values (e.g. 0 and 1 for a probability).
    pub y_include: Vec<f64>,
}

const W: f64 = 720.0;
const H: f64 = 280.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

impl Chart<'_> {
    /// The chart as a `<figure>`; a note instead when there is nothing to draw.
    pub fn render(&self) -> String {
        let n = self.x_labels.len();
        let finite = self
            .lines
            .iter()
            .flat_map(|l| l.values.iter())
            .chain(
                self.bands
                    .iter()
                    .flat_map(|b| b.lower.iter().chain(&b.upper)),
            )
            .chain(self.rules.iter().map(|r| &r.y))
            .chain(self.y_include.iter())
            .copied()
            .filter(|v| v.is_finite());
        let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if n == 0 || !lo.is_finite() {
            return format!(
                "<p class=\"note\">{}: no data to chart yet.</p>",
                esc(self.title)
            );
        }
        if hi - lo < 1e-12 {
            lo -= 0.5;
            hi += 0.5;
        }
        let pad = (hi - lo) * 0.05;
        let (lo, hi) = (lo - pad, hi + pad);
        let plot_w = W - LEFT - RIGHT;
        let plot_h = H - TOP - BOTTOM;
        let x = |i: usize| {
            if n == 1 {
                LEFT + plot_w / 2.0
            } else {
                LEFT + plot_w * i as f64 / (n - 1) as f64
            }
        };
        let y = |v: f64| TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
        let mut out = String::new();
        let _ = write!(
            out,
            "<figure><svg viewBox=\"0 0 {W} {H}\" width=\"100%\" style=\"max-width:{W}px\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
            esc(self.title)
        );
        // Axes and y ticks.
        let _ = write!(
            out,
            "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"#fff\" stroke=\"#6b6b6b\"/>"
        );
        for k in 0..=4 {
            let v = lo + (hi - lo) * k as f64 / 4.0;
            let yy = y(v);
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e0e0e0\"/>\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                LEFT + plot_w,
                LEFT - 6.0,
                yy + 4.0,
                num(v, tick_digits(hi - lo))
            );
        }
        // X labels: at most 6, evenly spread.
        let step = n.div_ceil(6).max(1);
        for i in (0..n).step_by(step) {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x(i),
                H - BOTTOM + 18.0,
                esc(&self.x_labels[i])
            );
        }
        let mut legend: Vec<(String, &str, bool, bool)> = Vec::new();
        for b in &self.bands {
            let mut pts = String::new();
            for (i, v) in b.upper.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                let _ = write!(pts, "{:.1},{:.1} ", x(i), y(*v));
            }
            for (i, v) in b
                .lower
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, v)| v.is_finite())
            {
                let _ = write!(pts, "{:.1},{:.1} ", x(i), y(*v));
            }
            let _ = write!(
                out,
                "<polygon points=\"{}\" fill=\"{}\" fill-opacity=\"0.25\" stroke=\"none\"/>",
                pts.trim_end(),
                b.color
            );
            legend.push((b.label.to_string(), b.color, false, true));
        }
        for r in &self.rules {
            let yy = y(r.y);
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{}\" stroke-dasharray=\"2 3\" stroke-width=\"1.5\"/>",
                LEFT + plot_w,
                r.color
            );
            legend.push((
                format!("{} ({})", r.label, num(r.y, 2)),
                r.color,
                true,
                false,
            ));
        }
        for l in &self.lines {
            let mut path = String::new();
            let mut pen_up = true;
            for (i, v) in l.values.iter().enumerate() {
                if v.is_finite() {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_up { "M" } else { "L" },
                        x(i),
                        y(*v)
                    );
                    pen_up = false;
                } else {
                    pen_up = true;
                }
            }
            let dash = if l.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash}/>",
                path.trim_end(),
                l.color
            );
            for (i, v) in l.values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                let _ = write!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                    x(i),
                    y(*v),
                    l.color
                );
            }
            legend.push((l.label.to_string(), l.color, l.dashed, false));
        }
        for (k, (label, color, dashed, area)) in legend.iter().enumerate() {
            let ly = TOP + 10.0 + 18.0 * k as f64;
            let lx = W - RIGHT + 10.0;
            if *area {
                let _ = write!(
                    out,
                    "<rect x=\"{lx}\" y=\"{:.1}\" width=\"18\" height=\"10\" fill=\"{color}\" fill-opacity=\"0.25\"/>",
                    ly - 5.0
                );
            } else {
                let dash = if *dashed {
                    " stroke-dasharray=\"2 3\""
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    "<line x1=\"{lx}\" x2=\"{}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>",
                    lx + 18.0
                );
            }
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{:.1}\">{}</text>",
                lx + 24.0,
                ly + 4.0,
                esc(label)
            );
        }
        let _ = write!(
            out,
            "</svg><figcaption>{}</figcaption></figure>",
            esc(self.title)
        );
        out
    }
}

fn tick_digits(range: f64) -> usize {
    if range >= 100.0 {
        0
    } else if range >= 1.0 {
        2
    } else {
        3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_chart_is_a_note() {
        let c = Chart {
            title: "AUC <by> day",
            x_labels: vec![],
            lines: vec![],
            bands: vec![],
            rules: vec![],
            y_include: vec![],
        };
        let out = c.render();
        assert!(out.contains("no data"));
        assert!(out.contains("AUC &lt;by&gt; day"));
    }

    #[test]
    fn draws_lines_bands_and_escaped_labels() {
        let c = Chart {
            title: "t",
            x_labels: vec!["<a>".into(), "b".into(), "c".into()],
            lines: vec![Line {
                label: "mean",
                values: vec![1.0, f64::NAN, 3.0],
                color: "#0b4f9c",
                dashed: false,
            }],
            bands: vec![Band {
                label: "95%",
                lower: vec![0.0, 1.0, 2.0],
                upper: vec![2.0, 3.0, 4.0],
                color: "#0b4f9c",
            }],
            rules: vec![],
            y_include: vec![0.0],
        };
        let out = c.render();
        assert!(out.contains("<polygon"));
        assert_eq!(
            out.matches("<circle").count(),
            2,
            "the NaN point is skipped"
        );
        assert!(out.contains("&lt;a&gt;") && !out.contains("<a>"));
    }
}
