//! ARIMA against statsmodels' SARIMAX with fixed orders (exact likelihood, exact diffuse
//! initialisation of the integrated states). Coefficients, σ², log-likelihood and AICc must agree
//! to 1e-3 relative; forecasts and interval bounds too.

use aurum_forecast::{ArimaMethod, ArimaOrder, ArimaSpec, Forecaster, ModelSpec, fit_arima};

use crate::common::{assert_rel, consumption, f, fixture, fvec, log_airline};

const TOL: f64 = 1e-3;

fn check_forecasts(model: &aurum_forecast::FittedModel, fx: &serde_json::Value) {
    let fc = model.forecast(12, &[80.0, 95.0]).expect("forecast");
    let want = &fx["forecast"];
    for (i, (g, w)) in fc.mean.iter().zip(fvec(&want["mean"])).enumerate() {
        assert_rel(&format!("mean[{i}]"), *g, w, TOL);
    }
    for (i, (g, w)) in fc.std_dev.iter().zip(fvec(&want["variance"])).enumerate() {
        assert_rel(&format!("variance[{i}]"), g * g, w, TOL);
    }
    for level in [80.0, 95.0] {
        let iv = fc.interval(level).expect("level requested");
        let key = format!("{level:.0}");
        let lo = fvec(&want["intervals"][&key]["lower"]);
        let hi = fvec(&want["intervals"][&key]["upper"]);
        // Bounds can sit near zero, so the tolerance is relative to the bound's size plus the
        // forecast standard deviation.
        for i in 0..12 {
            let scale = fc.std_dev[i];
            for (name, g, w) in [("lower", iv.lower[i], lo[i]), ("upper", iv.upper[i], hi[i])] {
                assert!(
                    (g - w).abs() <= TOL * (w.abs() + scale),
                    "{name}{key}[{i}]: aurum {g} vs reference {w}"
                );
            }
        }
    }
}

#[test]
fn airline_log_arima_011_011_12_matches_statsmodels() {
    let fx = fixture("arima_airline_log.json");
    let spec = ArimaSpec {
        order: ArimaOrder::new(0, 1, 1).seasonal(0, 1, 1, 12),
        constant: false,
        method: ArimaMethod::CssMl,
    };
    let y = log_airline();
    let fit = fit_arima(&y, &spec).expect("fits");
    let p = &fx["params"];
    assert_rel("ma.L1", fit.ma[0], f(&p["ma.L1"]), TOL);
    assert_rel("ma.S.L12", fit.seasonal_ma[0], f(&p["ma.S.L12"]), TOL);
    assert_rel("sigma2", fit.sigma2, f(&fx["sigma2"]), TOL);
    assert_rel("loglik", fit.loglik, f(&fx["loglik"]), 1e-6);
    assert_rel("aicc", fit.aicc, f(&fx["aicc"]), 1e-6);
    assert_eq!(fit.n_used, 131);
    assert!(fit.converged);

    let model = ModelSpec::Arima(spec).fit(&y).expect("fits");
    check_forecasts(&model, &fx);
}

#[test]
fn us_change_consumption_arima_103_with_mean_matches_statsmodels() {
    let fx = fixture("arima_us_change_consumption.json");
    let spec = ArimaSpec {
        order: ArimaOrder::new(1, 0, 3),
        constant: true,
        method: ArimaMethod::CssMl,
    };
    let y = consumption();
    let fit = fit_arima(&y, &spec).expect("fits");
    let p = &fx["params"];
    assert_rel(
        "const (mean)",
        fit.constant.expect("mean"),
        f(&p["const"]),
        TOL,
    );
    assert_rel("ar.L1", fit.ar[0], f(&p["ar.L1"]), TOL);
    assert_rel("ma.L1", fit.ma[0], f(&p["ma.L1"]), TOL);
    assert_rel("ma.L2", fit.ma[1], f(&p["ma.L2"]), TOL);
    assert_rel("ma.L3", fit.ma[2], f(&p["ma.L3"]), TOL);
    assert_rel("sigma2", fit.sigma2, f(&fx["sigma2"]), TOL);
    assert_rel("loglik", fit.loglik, f(&fx["loglik"]), 1e-6);
    assert_rel("aicc", fit.aicc, f(&fx["aicc"]), 1e-6);
    assert!(fit.converged);

    let model = ModelSpec::Arima(spec).fit(&y).expect("fits");
    check_forecasts(&model, &fx);
}

#[test]
fn pure_ml_reaches_the_same_optimum_as_css_ml() {
    let y = consumption();
    let spec = |method| ArimaSpec {
        order: ArimaOrder::new(1, 0, 3),
        constant: true,
        method,
    };
    let a = fit_arima(&y, &spec(ArimaMethod::CssMl)).expect("fits");
    let b = fit_arima(&y, &spec(ArimaMethod::Ml)).expect("fits");
    assert_rel("loglik", b.loglik, a.loglik, 1e-7);
}
