//! HTTP endpoints. Authentication is done upstream (app-service); `/admin/*` is guarded there.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::api::scrape::{
    RetransformRequest, ScrapeAcceptedResponse, ScrapeCachedResponse, ScrapeRequest,
};
use common::error::FieldError;
use common::extract::{parse_json, BodyRejection, ValidJson, Validate};

use crate::error::ApiError;
use crate::idno::Idno;
use crate::worker::Pipeline;
use crate::{cache, jobs, load, retransform};

/// The service's routes (without the common layers).
pub fn router(pipeline: Arc<Pipeline>) -> Router {
    Router::new()
        .route("/scrape", post(scrape))
        .route("/scrape/", post(scrape))
        .route("/scrape/jobs/{id}", get(job))
        .route("/scrape/jobs/{id}/", get(job))
        .route("/companies/{idno}", get(company))
        .route("/companies/{idno}/", get(company))
        .route("/admin/retransform", post(retransform_all))
        .route("/admin/retransform/", post(retransform_all))
        .route("/readyz", get(readyz))
        .with_state(pipeline)
}

/// `POST /scrape`: fresh cached data (200) or a queued job (202, `Location` = its status URL).
async fn scrape(
    State(p): State<Arc<Pipeline>>,
    ValidJson(req): ValidJson<ScrapeRequest>,
) -> Result<Response, ApiError> {
    if !req.force_refresh {
        if let Some(data) = fresh_record(&p, &req.idno).await? {
            let body = ScrapeCachedResponse {
                success: true,
                message: "Company data served from cache".into(),
                data,
                cached: true,
            };
            return Ok((StatusCode::OK, Json(body)).into_response());
        }
    }
    let (job, created) = jobs::enqueue(&p.db, &req.idno, p.config.max_attempts).await?;
    if created {
        p.notify.notify_one();
    }
    let status_url = format!("/scrape/jobs/{}", job.id);
    let body = ScrapeAcceptedResponse {
        success: true,
        message: if created {
            "Scrape job queued"
        } else {
            "A scrape job for this company is already pending"
        }
        .into(),
        job_id: job.id,
        idno: job.idno.clone(),
        state: job.state(),
        cached: false,
        status_url: status_url.clone(),
    };
    let location = common::server::header_value(&status_url);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// The record of `idno` if it is fresh: in the cache, or else in the database fetched less than
/// `COMPANY_CACHE_TTL_SECONDS` ago (then it is cached again, e.g. after a Redis restart).
async fn fresh_record(
    p: &Pipeline,
    idno: &str,
) -> Result<Option<common::api::scrape::CompanyRecord>, ApiError> {
    if let Some(record) = cache::get(&p.kv, idno).await {
        return Ok(Some(record));
    }
    let Some(record) = load::latest_record(&p.db, idno).await? else {
        return Ok(None);
    };
    let ttl = chrono::Duration::from_std(p.config.cache_ttl).unwrap_or(chrono::Duration::MAX);
    let fresh = record
        .fetched_at
        .is_some_and(|at| at + ttl > common::db::now());
    if !fresh {
        return Ok(None);
    }
    cache::put(&p.kv, &record, p.config.cache_ttl).await;
    Ok(Some(record))
}

/// `GET /scrape/jobs/{id}`.
async fn job(
    State(p): State<Arc<Pipeline>>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id: i64 = raw.parse().map_err(|_| {
        ApiError::Invalid(vec![FieldError::path(
            "id",
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        )])
    })?;
    let job = jobs::get(&p.db, id)
        .await?
        .ok_or(ApiError::NotFound("Job not found"))?;
    let mut body = job.to_response();
    if let Some(tid) = job
        .transformed_id
        .filter(|_| job.state() == common::api::scrape::JobState::Succeeded)
    {
        body.data = load::record_by_id(&p.db, tid).await?;
    }
    Ok(Json(body).into_response())
}

/// `GET /companies/{idno}`: the latest transformed record.
async fn company(
    State(p): State<Arc<Pipeline>>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let idno = Idno::from_path(&raw, "idno").map_err(|e| ApiError::Invalid(vec![e]))?;
    let record = load::latest_record(&p.db, idno.as_str())
        .await?
        .ok_or(ApiError::NotFound("Company not found"))?;
    Ok(Json(record).into_response())
}

/// `POST /admin/retransform`: `{idno?}` (an empty body means all pages).
async fn retransform_all(
    State(p): State<Arc<Pipeline>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: RetransformRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RetransformRequest::default()
    } else {
        match parse_json::<RetransformRequest>(&body) {
            Ok(r) => r,
            Err(BodyRejection::Invalid(errors)) => return Err(ApiError::Invalid(errors)),
            Err(other) => return Ok(other.into_response()),
        }
    };
    let errors = req.validate();
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let report = retransform::run(&p.db, &p.kv, &p.config, req.idno.as_deref()).await?;
    Ok(Json(report).into_response())
}

/// `/readyz`: the database and the key-value store answer.
async fn readyz(State(p): State<Arc<Pipeline>>) -> Response {
    let db = p.db.ping().await.map_err(|e| e.to_string());
    let kv = p.kv.ping().await.map_err(|e| e.to_string());
    common::server::readiness(&[("database", db), ("cache", kv)])
}
