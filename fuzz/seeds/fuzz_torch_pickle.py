# Seeds for fuzz_torch_pickle: the committed torch.save fixtures (good, malicious, legacy,
# truncated, ZIP64, deflated) and each one's data.pkl alone, for the unpickler path.
# Usage: python3 fuzz_torch_pickle.py OUT_DIR REPO_ROOT
import pathlib, shutil, sys, zipfile

out, root = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for path in sorted((root / "tests/fixtures/torch_pickle").glob("*.bin")):
    shutil.copy(path, out / path.name)
    try:
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            (out / (path.stem + ".data.pkl")).write_bytes(z.read(name))
    except (zipfile.BadZipFile, StopIteration, NotImplementedError):
        pass
