//! Cooperative cancellation of fits.
//!
//! A fit runs on one thread from start to end (the caller's blocking task), so the token of the
//! request or job that asked for it is installed for the thread with [`with_cancel`] rather than
//! threaded through every estimator's signature. The optimisers test it at every iteration and
//! stop; the fit, backtest and selection loops then return [`ForecastError::Cancelled`], so a
//! cancelled job or an abandoned request stops using CPU within one optimiser iteration.

use std::cell::RefCell;

use aurum_core::CancelToken;

use crate::error::ForecastError;

thread_local! {
    static CURRENT: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

/// Runs `f` with `token` as this thread's cancellation token (restoring the previous one after).
pub fn with_cancel<R>(token: &CancelToken, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<CancelToken>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CURRENT.with(|c| c.replace(Some(token.clone())));
    let _restore = Restore(prev);
    f()
}

/// `true` once this thread's token (if any) is cancelled.
pub(crate) fn cancelled() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(CancelToken::is_cancelled))
}

/// [`ForecastError::Cancelled`] once this thread's token is cancelled (also for external
/// forecasters, whose training loops call it once per epoch).
///
/// # Errors
///
/// [`ForecastError::Cancelled`].
pub fn check() -> Result<(), ForecastError> {
    if cancelled() {
        Err(ForecastError::Cancelled)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_scoped_to_the_call() {
        let token = CancelToken::new();
        assert!(check().is_ok());
        with_cancel(&token, || {
            assert!(check().is_ok());
            token.cancel();
            assert_eq!(check(), Err(ForecastError::Cancelled));
        });
        assert!(check().is_ok(), "restored after the call");
        // A cancelled token stops a long fit at once.
        let y: Vec<f64> = (0..2000)
            .map(|t| (t as f64 / 7.0).sin() + t as f64 * 0.01)
            .collect();
        let spec = crate::ModelSpec::Ets(crate::EtsSpec::auto(169));
        let started = std::time::Instant::now();
        let r = with_cancel(&token, || crate::Forecaster::fit(&spec, &y));
        assert_eq!(r.err(), Some(ForecastError::Cancelled));
        assert!(started.elapsed().as_secs_f64() < 1.0);
    }
}
