//! The Go seed's five model-fallback examples on simulated models: non-streaming, streaming, stats,
//! disabling and re-enabling the primary at runtime, and retry then fallback.
//!
//! `cargo run --example model_fallback`

use std::io::Write;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), switchyard::Error> {
    let mut stdout = std::io::stdout();
    switchyard_sim::model_fallback_demo(|text| {
        // Flushing shows streamed text as it arrives; a closed stdout is not worth failing the demo for.
        let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    })
    .await?;
    Ok(())
}
