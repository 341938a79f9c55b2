"""Unit tests: blob name -> output, report and task id mapping, and which names cannot be mapped safely."""

import re

import pytest

from shared.domain import naming


def test_output_keeps_folders_and_inner_dots():
    assert naming.output_name("videos/2024/a.b.mp4") == "videos/2024/a.b.mp3"
    assert naming.output_name("UPPER.MP4") == "UPPER.MP3"  # case kept: a.MP4 and a.mp4 never collide


def test_longest_names_map_and_their_report_goes_to_the_hash_folder():
    name = "x" * 1020 + ".mp4"
    assert naming.output_name(name) == "x" * 1020 + ".mp3"
    assert naming.report_name(name).startswith(naming.UNMAPPABLE_FOLDER + "/")


def test_report_sits_where_the_mp3_would_be():
    assert naming.report_name("videos/2024/a.b.mp4") == "videos/2024/a.b.error.json"


@pytest.mark.parametrize("name", ["a.mp4", "A.MP4", "x/y.Mp4", "IMG_1.MOV", "v.m4a", "p.3gp", "t.M4V"])
def test_input_names_any_case(name):
    assert naming.is_input(name)


@pytest.mark.parametrize("name", ["a.mp3", "a.mp4.txt", "mp4", "folder.mp4/", "a.mkv", "folder.mov/"])
def test_other_names_are_not_inputs(name):
    assert not naming.is_input(name)


@pytest.mark.parametrize("name", ["../up.mp4", "a/../b.mp4", "a//b.mp4", "/abs.mp4", "new\nline.mp4", "a\\b.mp4",
                                  "_mp3pipe-logs/x.mp4"])
def test_unsafe_names_are_unmappable(name):
    with pytest.raises(naming.UnmappableName):
        naming.output_name(name)
    assert naming.report_name(name).startswith(naming.UNMAPPABLE_FOLDER + "/")


@pytest.mark.parametrize("name", ["a.mp4", "-rf.mp4", "ünï 空白.mp4", "$(rm -rf ~)`x`;&&|.mp4", "d/" * 50 + "x.mp4"])
def test_task_id_is_a_valid_batch_id(name):
    tid = naming.task_id(name, '"0x8DC1"')
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tid)


def test_task_id_is_per_blob_version():
    a = naming.task_id("a.mp4", '"0x1"')
    assert a == naming.task_id("a.mp4", "0x1")  # quoted or not, the same version
    assert a != naming.task_id("a.mp4", "0x2")  # overwritten blob: new task
    # Batch ids are case-insensitive: names differing only by case still get different ids.
    assert naming.task_id("A.mp4", "0x1").lower() != a.lower()
