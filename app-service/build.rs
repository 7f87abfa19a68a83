//! Embeds the web UI's account area (`web/account`): see `ui_assets::build`.

fn main() {
    ui_assets::build::area("account", "web/account");
}
