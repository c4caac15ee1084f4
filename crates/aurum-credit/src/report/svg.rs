//! The four report plots as inline SVG.
//!
//! Each plot is a self-contained `<svg>` element: colours and strokes are presentation attributes,
//! not page CSS, so a plot copied out of the page still looks the same. Coordinates are written
//! with one decimal, which keeps the page small and byte-for-byte deterministic. A `viewBox`
//! lets the page scale the plots to its column width.

use std::fmt::Write;

use super::CreditReport;
use super::html::escape;

const W: f64 = 480.0;
const H: f64 = 340.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 48.0;

const MODEL: &str = "#1e3a8a";
const GOOD: &str = "#2563eb";
const BAD: &str = "#d9480f";
const NEUTRAL: &str = "#9ca3af";
const INK: &str = "#111827";
const MUTED: &str = "#4b5563";

/// One axis: data range, tick positions and their format, label.
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    fmt: fn(f64) -> String,
    label: String,
}

impl Axis {
    /// `[0, 1]` with ticks every 0.2, shown as percentages.
    fn unit_percent(label: &str) -> Axis {
        Axis::percent(0.0, 1.0, label)
    }

    fn percent(lo: f64, hi: f64, label: &str) -> Axis {
        Axis {
            lo,
            hi,
            ticks: nice_ticks(lo, hi),
            fmt: |v| format!("{:.0}%", v * 100.0),
            label: label.into(),
        }
    }

    fn plain(lo: f64, hi: f64, label: &str) -> Axis {
        let ticks = nice_ticks(lo, hi);
        let step = if ticks.len() > 1 {
            ticks[1] - ticks[0]
        } else {
            1.0
        };
        let fmt: fn(f64) -> String = if step >= 1.0 {
            |v| format!("{v:.0}")
        } else if step >= 0.1 {
            |v| format!("{v:.1}")
        } else if step >= 0.01 {
            |v| format!("{v:.2}")
        } else {
            |v| format!("{v:.3}")
        };
        Axis {
            lo,
            hi,
            ticks,
            fmt,
            label: label.into(),
        }
    }
}

/// Ticks at multiples of 1, 2 or 5 × 10ᵏ inside `[lo, hi]`, four to seven intervals apart.
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return vec![lo];
    }
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    // The finest round step that gives at most 7 intervals.
    let step = [1.0, 2.0, 5.0, 10.0, 20.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|&s| span / s <= 7.0 + 1e-9)
        .unwrap_or(20.0 * mag);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    // Below 1, divide by the power of ten rather than multiply by its (inexact) inverse, so that
    // ticks are the shortest decimals: 0.6, not 0.6000000000000001.
    let inv = (1.0 / mag).round();
    (first..=last)
        .map(|k| {
            if mag < 1.0 {
                (k as f64 * step * inv).round() / inv
            } else {
                k as f64 * step
            }
        })
        .collect()
}

/// Rounds `v` up to the next multiple of `step` (at least `step`).
fn ceil_to(v: f64, step: f64) -> f64 {
    ((v / step - 1e-9).ceil() * step).max(step)
}

#[derive(Clone, Copy)]
enum Corner {
    TopLeft,
    TopRight,
    BottomRight,
}

struct Chart {
    out: String,
    x: Axis,
    y: Axis,
}

impl Chart {
    /// Opens the `<svg>` and draws the grid, ticks and axis labels.
    fn new(title: &str, x: Axis, y: Axis) -> Chart {
        let mut out = String::with_capacity(8 * 1024);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="11"><title>{}</title>"#,
            escape(title)
        );
        let mut c = Chart { out, x, y };
        let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
        for i in 0..c.x.ticks.len() {
            let t = c.x.ticks[i];
            let px = c.px(t);
            let _ = write!(
                c.out,
                r##"<line x1="{px:.1}" y1="{y0:.1}" x2="{px:.1}" y2="{y1:.1}" stroke="#e5e7eb"/><text x="{px:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}">{}</text>"##,
                y1 + 15.0,
                escape(&(c.x.fmt)(t))
            );
        }
        for i in 0..c.y.ticks.len() {
            let t = c.y.ticks[i];
            let py = c.py(t);
            let _ = write!(
                c.out,
                r##"<line x1="{x0:.1}" y1="{py:.1}" x2="{x1:.1}" y2="{py:.1}" stroke="#e5e7eb"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{MUTED}">{}</text>"##,
                x0 - 6.0,
                py + 4.0,
                escape(&(c.y.fmt)(t))
            );
        }
        let _ = write!(
            c.out,
            r##"<rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#6b7280"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{INK}" font-size="12">{}</text><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="{INK}" font-size="12">{}</text>"##,
            x1 - x0,
            y1 - y0,
            (x0 + x1) / 2.0,
            H - 10.0,
            escape(&c.x.label),
            (y0 + y1) / 2.0,
            escape(&c.y.label),
        );
        c
    }

    fn px(&self, v: f64) -> f64 {
        LEFT + (v - self.x.lo) / (self.x.hi - self.x.lo) * (W - RIGHT - LEFT)
    }

    fn py(&self, v: f64) -> f64 {
        H - BOTTOM - (v - self.y.lo) / (self.y.hi - self.y.lo) * (H - BOTTOM - TOP)
    }

    fn coords(&self, points: &[(f64, f64)]) -> String {
        let mut s = String::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let _ = write!(s, "{sep}{:.1},{:.1}", self.px(x), self.py(y));
        }
        s
    }

    fn polyline(&mut self, points: &[(f64, f64)], stroke: &str, width: f64, dash: bool) {
        let dash = if dash {
            r#" stroke-dasharray="5 4""#
        } else {
            ""
        };
        let pts = self.coords(points);
        let _ = write!(
            self.out,
            r#"<polyline points="{pts}" fill="none" stroke="{stroke}" stroke-width="{width}" stroke-linejoin="round"{dash}/>"#
        );
    }

    fn polygon(&mut self, points: &[(f64, f64)], fill: &str, opacity: f64) {
        let pts = self.coords(points);
        let _ = write!(
            self.out,
            r#"<polygon points="{pts}" fill="{fill}" fill-opacity="{opacity}" stroke="none"/>"#
        );
    }

    fn circle(&mut self, (x, y): (f64, f64), r: f64, fill: &str) {
        let _ = write!(
            self.out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{r}" fill="{fill}" stroke="white" stroke-width="1.2"/>"#,
            self.px(x),
            self.py(y)
        );
    }

    /// A bar from the x axis up to `height`, between `x0` and `x1`.
    fn bar(&mut self, x0: f64, x1: f64, height: f64, fill: &str) {
        let (left, right, top, bottom) = (self.px(x0), self.px(x1), self.py(height), self.py(0.0));
        let _ = write!(
            self.out,
            r#"<rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{fill}" fill-opacity="0.45" stroke="{fill}" stroke-width="0.8"/>"#,
            (right - left).max(0.0),
            (bottom - top).max(0.0)
        );
    }

    /// Text at a data point, offset by `(dx, dy)` pixels.
    fn label(&mut self, (x, y): (f64, f64), (dx, dy): (f64, f64), anchor: &str, text: &str) {
        let _ = write!(
            self.out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}" fill="{INK}" font-weight="600" paint-order="stroke" stroke="white" stroke-width="3">{}</text>"#,
            self.px(x) + dx,
            self.py(y) + dy,
            escape(text)
        );
    }

    /// A legend box in a corner of the plot area: `(colour, dashed, text)` per line.
    fn legend(&mut self, items: &[(&str, bool, String)], corner: Corner) {
        let longest = items.iter().map(|i| i.2.chars().count()).max().unwrap_or(0);
        let width = 44.0 + 6.2 * longest as f64;
        let height = 8.0 + 16.0 * items.len() as f64;
        let x = match corner {
            Corner::TopLeft => LEFT + 8.0,
            Corner::TopRight | Corner::BottomRight => W - RIGHT - 8.0 - width,
        };
        let y = match corner {
            Corner::TopLeft | Corner::TopRight => TOP + 8.0,
            Corner::BottomRight => H - BOTTOM - 8.0 - height,
        };
        let _ = write!(
            self.out,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{height:.1}" rx="4" fill="white" fill-opacity="0.92" stroke="#d1d5db"/>"##
        );
        for (i, (colour, dash, text)) in items.iter().enumerate() {
            let ly = y + 16.0 + 16.0 * i as f64;
            let dash = if *dash {
                r#" stroke-dasharray="5 4""#
            } else {
                ""
            };
            let _ = write!(
                self.out,
                r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="3"{dash}/><text x="{:.1}" y="{:.1}" fill="{INK}">{}</text>"#,
                x + 8.0,
                ly - 4.0,
                x + 30.0,
                ly - 4.0,
                x + 36.0,
                ly,
                escape(text)
            );
        }
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// ROC curve with the random-ranking diagonal and the policy cut-off marked.
pub(super) fn roc(r: &CreditReport) -> String {
    let mut c = Chart::new(
        "ROC curve",
        Axis::unit_percent("False positive rate (goods declined)"),
        Axis::unit_percent("True positive rate (bads declined)"),
    );
    let pts: Vec<(f64, f64)> = r.roc_curve.iter().map(|p| (p.fpr, p.tpr)).collect();
    let mut area = pts.clone();
    area.extend([(1.0, 0.0), (0.0, 0.0)]);
    c.polygon(&area, MODEL, 0.08);
    c.polyline(&[(0.0, 0.0), (1.0, 1.0)], NEUTRAL, 1.5, true);
    c.polyline(&pts, MODEL, 2.2, false);
    let m = &r.confusion_matrix;
    let at = (
        ratio(m.false_positive, m.false_positive + m.true_negative),
        ratio(m.true_positive, m.true_positive + m.false_negative),
    );
    c.circle(at, 5.0, BAD);
    c.label(
        at,
        (8.0, 16.0),
        "start",
        &format!("cut-off PD ≥ {:.3}", r.threshold),
    );
    c.legend(
        &[
            (MODEL, false, format!("Model (AUC {:.3})", r.metrics.auc)),
            (NEUTRAL, true, "Random ranking (AUC 0.5)".into()),
        ],
        Corner::BottomRight,
    );
    c.finish()
}

/// Cumulative distributions of goods and bads against the share of applicants ordered by PD,
/// with the KS gap drawn where it occurs.
pub(super) fn ks(r: &CreditReport) -> String {
    let mut c = Chart::new(
        "KS curve",
        Axis::unit_percent("Share of applicants, lowest PD first"),
        Axis::unit_percent("Cumulative share of class"),
    );
    let goods: Vec<_> = r
        .ks_curve
        .iter()
        .map(|k| (k.population_share, k.cum_good))
        .collect();
    let bads: Vec<_> = r
        .ks_curve
        .iter()
        .map(|k| (k.population_share, k.cum_bad))
        .collect();
    c.polyline(&goods, GOOD, 2.2, false);
    c.polyline(&bads, BAD, 2.2, false);
    let gap = |k: &super::KsCurvePoint| (k.cum_good - k.cum_bad).abs();
    if let Some(k) = r
        .ks_curve
        .iter()
        .reduce(|best, k| if gap(k) > gap(best) { k } else { best })
    {
        let x = k.population_share;
        c.polyline(&[(x, k.cum_bad), (x, k.cum_good)], INK, 2.0, false);
        c.circle((x, k.cum_good), 3.5, GOOD);
        c.circle((x, k.cum_bad), 3.5, BAD);
        let mid = (k.cum_good + k.cum_bad) / 2.0;
        let (dx, anchor) = if x > 0.6 {
            (-8.0, "end")
        } else {
            (8.0, "start")
        };
        c.label(
            (x, mid),
            (dx, 4.0),
            anchor,
            &format!("KS {:.3} at PD {:.3}", r.metrics.ks, r.metrics.ks_cutoff),
        );
    }
    c.legend(
        &[
            (GOOD, false, "Goods (cumulative)".into()),
            (BAD, false, "Bads (cumulative)".into()),
        ],
        Corner::BottomRight,
    );
    c.finish()
}

/// Overlaid histograms of goods and bads, each as a share of its own class so that the smaller
/// class stays visible.
pub(super) fn distribution(r: &CreditReport) -> String {
    let d = &r.score_distribution;
    let n_good: usize = d.goods.iter().sum();
    let n_bad: usize = d.bads.iter().sum();
    let share = |c: usize, n: usize| ratio(c, n);
    let top = d
        .goods
        .iter()
        .map(|&g| share(g, n_good))
        .chain(d.bads.iter().map(|&b| share(b, n_bad)))
        .fold(0.0, f64::max);
    // Headroom for the legend above the tallest bar.
    let top = ceil_to(top * 1.25, 0.05).min(1.0);
    let (lo, hi) = (d.edges[0], d.edges[d.edges.len() - 1]);
    let x_label = match d.score {
        super::ScoreKind::Probability => "Predicted probability of default",
        super::ScoreKind::Points => "Score (points)",
    };
    let mut c = Chart::new(
        "Score distributions of goods and bads",
        Axis::plain(lo, hi, x_label),
        Axis::percent(0.0, top, "Share of class"),
    );
    for (i, w) in d.edges.windows(2).enumerate() {
        c.bar(w[0], w[1], share(d.goods[i], n_good), GOOD);
    }
    for (i, w) in d.edges.windows(2).enumerate() {
        c.bar(w[0], w[1], share(d.bads[i], n_bad), BAD);
    }
    if d.score == super::ScoreKind::Probability && (lo..=hi).contains(&r.threshold) {
        c.polyline(&[(r.threshold, 0.0), (r.threshold, top)], INK, 1.5, true);
        c.label(
            (r.threshold, top),
            (4.0, 14.0),
            "start",
            &format!("cut-off {:.3}", r.threshold),
        );
    }
    // The legend goes in whichever top corner the bars leave emptier.
    let third = d.goods.len() / 3;
    let peak = |range: std::ops::Range<usize>| {
        range
            .map(|i| share(d.goods[i], n_good).max(share(d.bads[i], n_bad)))
            .fold(0.0, f64::max)
    };
    let n = d.goods.len();
    let corner = if peak(0..third) <= peak(n - third..n) {
        Corner::TopLeft
    } else {
        Corner::TopRight
    };
    c.legend(
        &[
            (GOOD, false, format!("Goods (n = {n_good})")),
            (BAD, false, format!("Bads (n = {n_bad})")),
        ],
        corner,
    );
    c.finish()
}

/// Observed bad rate against mean predicted PD by decile, with the perfect-calibration diagonal.
pub(super) fn calibration(r: &CreditReport) -> String {
    let top = r
        .calibration
        .iter()
        .map(|b| b.mean_predicted.max(b.observed_rate))
        .fold(0.0, f64::max);
    let top = ceil_to(top, 0.1).min(1.0);
    let mut c = Chart::new(
        "Calibration by decile",
        Axis::percent(0.0, top, "Mean predicted PD"),
        Axis::percent(0.0, top, "Observed bad rate"),
    );
    c.polyline(&[(0.0, 0.0), (top, top)], NEUTRAL, 1.5, true);
    let pts: Vec<_> = r
        .calibration
        .iter()
        .map(|b| (b.mean_predicted, b.observed_rate))
        .collect();
    c.polyline(&pts, MODEL, 2.0, false);
    for &p in &pts {
        c.circle(p, 4.5, MODEL);
    }
    c.legend(
        &[
            (MODEL, false, "Observed, by decile of PD".into()),
            (NEUTRAL, true, "Perfect calibration".into()),
        ],
        Corner::TopLeft,
    );
    c.finish()
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(nice_ticks(0.0, 1.0), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(
            nice_ticks(412.0, 688.0),
            [450.0, 500.0, 550.0, 600.0, 650.0]
        );
        assert_eq!(nice_ticks(0.3, 0.3), [0.3]);
        assert_eq!(ceil_to(0.31, 0.1), 0.4);
        assert_eq!(ceil_to(0.0, 0.1), 0.1);
    }
}
