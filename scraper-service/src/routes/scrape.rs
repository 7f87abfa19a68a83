//! `POST /scrape`: a company's fresh data from the cache, or a queued scrape job owned by
//! the caller.

use api::scrape::{ScrapeAcceptedResponse, ScrapeCachedResponse, ScrapeRequest};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use service_kit::extract::ValidJson;
use service_kit::server::header_value;
use service_kit::Caller;

use crate::error::ApiError;
use crate::quota::Spend;
use crate::state::AppState;
use crate::store;

/// Fresh data (200), or a queued job (202, `Location` = its status URL). The caller's own
/// pending job for the same company is joined rather than duplicated. Queuing (and forcing a
/// refresh) is capped per user — 429 with `Retry-After` beyond the cap; an answer from the
/// cache costs nothing.
pub async fn scrape(
    caller: Caller,
    State(s): State<AppState>,
    ValidJson(order): ValidJson<ScrapeRequest>,
) -> Result<Response, ApiError> {
    if !order.force_refresh {
        if let Some(data) = s.cache.fresh(&s.db, &order.idno).await? {
            let body = ScrapeCachedResponse {
                success: true,
                message: "Company data served from cache".into(),
                data,
                cached: true,
            };
            return Ok((StatusCode::OK, Json(body)).into_response());
        }
    }
    s.quotas
        .spend(caller.user_id, Spend::Job)
        .await?
        .map_err(ApiError::OverQuota)?;
    if order.force_refresh {
        s.quotas
            .spend(caller.user_id, Spend::ForcedRefresh)
            .await?
            .map_err(ApiError::OverQuota)?;
    }
    let (job, created) =
        store::jobs::enqueue(&s.db, &order.idno, caller.user_id, s.config.max_attempts).await?;
    if created {
        s.job_queued.notify_one();
    }
    let status_url = format!("/scrape/jobs/{}", job.public_id);
    let body = ScrapeAcceptedResponse {
        success: true,
        message: if created {
            "Scrape job queued"
        } else {
            "A scrape job for this company is already pending"
        }
        .into(),
        job_id: job.public_id.clone(),
        idno: job.idno.to_string(),
        state: job.state(),
        cached: false,
        status_url: status_url.clone(),
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, header_value(&status_url))],
        Json(body),
    )
        .into_response())
}
