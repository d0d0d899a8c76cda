//! The embedded static files under content-hashed URLs.

#[allow(clippy::wildcard_imports)]
use super::*;

/// `GET /static/{hash}/{file}`: embedded files under content-hashed URLs, cached for a year.
pub async fn asset(req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (hash, file) = path.into_inner();
    let (Some(data), Some(expected)) = (Assets::get(&file), asset_hash(&file)) else {
        return HttpResponse::NotFound().finish();
    };
    if hash != expected {
        return HttpResponse::NotFound().finish();
    }
    let etag = format!("\"{expected}\"");
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return HttpResponse::NotModified().finish();
    }
    let mime = match file.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    HttpResponse::Ok()
        .content_type(mime)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::ETAG, etag))
        .body(data.data.into_owned())
}
