//! The client side of the admin API, shared by `sealdb iam` and `sealdb keys`: AWS
//! credentials found the usual way, and one signed call to a running server.

use std::path::PathBuf;

use serde_json::Value;
use zeroize::Zeroizing;

use sealdb::protocol::operation::ADMIN_PREFIX;

/// Signs `body` for the admin operation `op_name` and posts it to `endpoint`. Errors read
/// `ErrorType: message`.
pub async fn admin_call(
    endpoint: &str,
    profile: Option<&str>,
    region: Option<&str>,
    op_name: &str,
    body: &[u8],
) -> Result<Value, String> {
    let (id, secret) = credentials(profile)?;
    let region = region
        .map(str::to_string)
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into());
    let url: reqwest::Url = endpoint
        .parse()
        .map_err(|e| format!("invalid --endpoint: {e}"))?;
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let target_header = format!("{ADMIN_PREFIX}{op_name}");
    let headers = vec![
        ("host".to_string(), host),
        (
            "content-type".to_string(),
            "application/x-amz-json-1.0".to_string(),
        ),
        ("x-amz-target".to_string(), target_header.clone()),
    ];
    let signed = sealdb::auth::sigv4::sign(
        "POST",
        "/",
        None,
        &headers,
        body,
        &id,
        &secret,
        None,
        &region,
        "dynamodb",
        time::OffsetDateTime::now_utc(),
    );
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", target_header)
        .body(body.to_vec());
    for (k, v) in signed {
        req = req.header(k, v);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let value: Value = resp
        .json()
        .await
        .map_err(|e| format!("bad response: {e}"))?;
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "{}: {}",
            value["__type"]
                .as_str()
                .unwrap_or("error")
                .rsplit('#')
                .next()
                .unwrap_or("error"),
            value["message"].as_str().unwrap_or("")
        ))
    }
}

/// AWS credentials the usual way: the environment (unless a profile is named), then the
/// shared credentials file's profile (`--profile`, AWS_PROFILE, then "default").
pub fn credentials(profile: Option<&str>) -> Result<(String, Zeroizing<String>), String> {
    if let (Ok(id), Ok(secret), None) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
        profile,
    ) {
        return Ok((id, Zeroizing::new(secret)));
    }
    let profile = profile
        .map(str::to_string)
        .or_else(|| std::env::var("AWS_PROFILE").ok())
        .unwrap_or_else(|| "default".into());
    let file = std::env::var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))
        .map_err(|_| {
            "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile"
                .to_string()
        })?;
    sealdb::app::read_credentials_profile(&file, &profile).ok_or_else(|| {
        format!(
            "no credentials for profile '{profile}' in {}",
            file.display()
        )
    })
}
