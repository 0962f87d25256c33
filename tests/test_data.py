import pytest
import torch

from models.common.errors import InputFileError
from training.data import CropDataset, StepSampler, find_images


def test_finds_images_recursively(photos_dir):
    files = find_images(photos_dir)
    assert len(files) == 6
    assert any(f.parent.name == "nested" for f in files)
    assert {f.suffix for f in files} == {".jpg", ".png"}


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputFileError, match="no images"):
        find_images(tmp_path)


def test_corrupt_image_is_skipped_with_a_warning_naming_it(photos_dir, tmp_path):
    import shutil

    shutil.copytree(photos_dir, tmp_path / "photos")
    bad = tmp_path / "photos" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    ds = CropDataset(tmp_path / "photos", size=32)
    bad_index = ds.files.index(bad)
    with pytest.warns(UserWarning, match="broken.jpg"):
        crop = ds[(bad_index, 123)]
    assert crop.shape == (3, 32, 32) and 0 <= float(crop.min()) and float(crop.max()) <= 1
    import warnings

    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        samples = [ds[(i, 7)] for i in range(len(ds))]
    assert later == []  # warned once only, then silently skipped
    assert all(s.shape == (3, 32, 32) for s in samples)


def test_a_readable_image_is_found_however_many_are_broken(tmp_path, photos_dir):
    for i in range(30):
        (tmp_path / f"bad{i:02d}.jpg").write_bytes(b"junk")
    (tmp_path / "zz_good.png").write_bytes(next(photos_dir.glob("*.png")).read_bytes())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert CropDataset(tmp_path, 32)[(0, 1)].shape == (3, 32, 32)


def test_crops_are_deterministic_per_seed(photos_dir):
    ds = CropDataset(photos_dir, size=48)
    assert torch.equal(ds[(0, 5)], ds[(0, 5)])
    assert not torch.equal(ds[(0, 5)], ds[(0, 6)])


def test_sampler_resumes_exactly_and_splits_ranks():
    full = list(StepSampler(10, batch=3, total_steps=8, seed=1))
    resumed = list(StepSampler(10, batch=3, total_steps=8, seed=1, start_step=5))
    assert resumed == full[5:]
    # two ranks of batch 3 cover the same images as one process of batch 6
    single = list(StepSampler(10, batch=6, total_steps=4, seed=1))
    r0 = list(StepSampler(10, batch=3, total_steps=4, seed=1, rank=0, world_size=2))
    r1 = list(StepSampler(10, batch=3, total_steps=4, seed=1, rank=1, world_size=2))
    assert [a + b for a, b in zip(r0, r1)] == single
    # each epoch visits every image once
    first_epoch = [i for batch in StepSampler(10, batch=5, total_steps=2, seed=3) for i, _ in batch]
    assert sorted(first_epoch) == list(range(10))
