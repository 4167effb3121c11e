//! `portcullis serve`.

use crate::settings::Settings;
use crate::startup::{shutdown_signal, Application};

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let issuer = settings.issuer().to_string();
    let backend = crate::store::Backend::of_url(settings.database.url.expose())?;
    let app = Application::build(settings).await?;
    println!(
        "Portcullis serving on {}://{} (issuer {issuer}, {} database)",
        app.scheme(),
        app.local_addr(),
        backend.name()
    );
    tracing::info!(addr = %app.local_addr(), %issuer, "listening");
    app.run_until(shutdown_signal()).await;
    Ok(())
}
