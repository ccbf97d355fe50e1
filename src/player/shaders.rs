//! The one place WGSL enters the program: every shader in `shaders/` is
//! embedded here at compile time, and the naga test validates exactly this
//! list, so a shader cannot ship without being checked.

/// The composition shader: YUV/RGBA/solid layers with fit, rotation and
/// letterbox (`shaders/layer.wgsl`).
pub const LAYER: &str = include_str!("../../shaders/layer.wgsl");

/// Every shader as `(file name, source)`, for validation.
pub const ALL: &[(&str, &str)] = &[("layer.wgsl", LAYER)];

#[cfg(test)]
mod tests {
    use wgpu::naga;

    /// Every shader parses and validates on the CPU (no device needed),
    /// with the same naga that wgpu compiles it with at run time.
    #[test]
    fn every_shader_validates_with_naga() {
        for (name, source) in super::ALL {
            let module = naga::front::wgsl::parse_str(source)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        }
    }

    /// Every file in `shaders/` is in [`super::ALL`], so none escapes the test.
    #[test]
    fn all_lists_every_file_in_the_shaders_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".wgsl"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = super::ALL.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }
}
