"""`tauri build --bundles deb` makes a package that installs the app with a desktop
entry and icons. Built in the debug profile here (the tests' build is reused; the
release package comes from the same configuration)."""

import glob
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_deb_package_installs_binary_desktop_entry_and_icons():
    subprocess.run(["npm", "run", "--silent", "tauri", "--", "build", "--debug", "--bundles", "deb"], cwd=ROOT, check=True, timeout=1200,
                   stdout=subprocess.DEVNULL)
    debs = glob.glob(os.path.join(ROOT, "target", "debug", "bundle", "deb", "Portway_*_amd64.deb"))
    assert len(debs) == 1, debs
    deb = debs[0]
    listing = subprocess.run(["dpkg-deb", "-c", deb], check=True, capture_output=True, text=True).stdout
    paths = {"./" + line.split()[-1].lstrip("./") for line in listing.splitlines()}
    for want in ["./usr/bin/portway-app", "./usr/share/applications/Portway.desktop",
                 "./usr/share/icons/hicolor/32x32/apps/portway-app.png",
                 "./usr/share/icons/hicolor/128x128/apps/portway-app.png",
                 "./usr/share/icons/hicolor/512x512/apps/portway-app.png"]:
        assert want in paths, "%s missing from the package:\n%s" % (want, listing)
    control = subprocess.run(["dpkg-deb", "-f", deb], check=True, capture_output=True, text=True).stdout
    assert "Package: portway" in control
    assert "libwebkit2gtk-4.1-0" in control, control
    # The tray needs AppIndicator at run time.
    assert "libayatana-appindicator3-1" in control, control
    desktop = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], check=True, capture_output=True).stdout
    member = "usr/share/applications/Portway.desktop"
    names = subprocess.run(["tar", "-t"], input=desktop, check=True, capture_output=True).stdout.decode().split()
    member = next(n for n in names if n.endswith(member))
    entry = subprocess.run(["tar", "-xO", member], input=desktop, check=True, capture_output=True).stdout.decode()
    assert "Exec=portway-app" in entry, entry
    assert "Icon=portway-app" in entry, entry
    assert "Name=Portway" in entry, entry
    assert "Type=Application" in entry, entry
