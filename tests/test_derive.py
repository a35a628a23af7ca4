"""The dataset runner of descriptions (derive.py) on a small real dataset: every row described from
its own CIF (a several-block CIF's own block), both forms written, a bad structure reported while
the others go on."""
import re

import pandas as pd
import pytest

from crystalclip import derive
from crystalclip.data.dataset import Dataset, row_crystal
from crystalclip.errors import BadInput
from crystalclip.structures import parse_cif
from crystalclip.structures.bonds import read_cif_bonds
from crystalclip.text.describe import describe_both
from crystalclip.text.masking import mask_formulas

from .conftest import MP40, mp40_table

pytestmark = pytest.mark.filterwarnings("ignore")  # pymatgen's and spglib's notices about CIFs and APIs

N_ROWS = 20


def _rename(cif: str, name: str) -> str:
    return re.sub(r"^data_\S+", f"data_{name}", cif, flags=re.M)


def _two_blocks() -> tuple[str, str, str]:
    """(CIF with blocks 'block1' and 'block2', block 1's CIF, block 2's CIF): two mp40 structures of
    different formulas."""
    table = mp40_table()
    first, second = table.cif[N_ROWS], table.cif[N_ROWS + 1]
    assert parse_cif(first)[0].reduced_formula() != parse_cif(second)[0].reduced_formula()
    return _rename(first, "block1") + "\n" + _rename(second, "block2"), first, second


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A dataset of the first N_ROWS mp40 rows and one entry whose CIF holds two blocks (rows
    'entry#block1' and 'entry#block2', both storing the two-block CIF)."""
    root = tmp_path_factory.mktemp("derive")
    table = pd.read_csv(MP40 / "captions_1000.csv", nrows=N_ROWS + 1)
    two = table.iloc[[N_ROWS]].copy()
    two["material_id"], two["cif"] = "entry", _two_blocks()[0]
    pd.concat([table.head(N_ROWS), two]).to_csv(root / "rows.csv", index=False)
    from crystalclip.data.build import build_dataset

    build_dataset([root / "rows.csv"], root / "data", workers=1)
    return root / "data"


def test_dataset_end_to_end(dataset):
    data = Dataset(dataset)
    assert len(data) == N_ROWS + 2
    seen = []
    summary = derive.dataset_descriptions(dataset, progress=lambda done, total: seen.append((done, total)))
    assert summary["structures"] == summary["written"] == len(data)
    assert summary["failed"] == [] and summary["failed_count"] == 0
    assert summary["describer"] == "template"
    assert summary["path"] == str(dataset / "texts" / "descriptions.parquet")
    assert seen[-1] == (len(data), len(data))
    texts = Dataset(dataset).read_texts("descriptions")
    free = Dataset(dataset).read_texts("descriptions_formula_free")
    assert set(texts) == set(free) == set(data.table["id"])
    cifs = data.cifs()
    for row, (id_, formula) in enumerate(zip(data.table["id"], data.formulas)):
        crystal = row_crystal(id_, cifs[row])
        # what the runner wrote is the describer's text (seed 0) of the row's structure and CIF bonds
        assert (texts[id_][0], free[id_][0]) == describe_both(crystal, seed=0, bonds=read_cif_bonds(cifs[row], crystal))
        assert formula in texts[id_][0] and formula not in free[id_][0]
        assert mask_formulas(free[id_][0]) == free[id_][0], (id_, free[id_][0])
    # seed None: one fixed template, the formula first
    derive.dataset_descriptions(dataset, seed=None, limit=5)
    canonical = Dataset(dataset).read_texts("descriptions")
    assert len(canonical) == 5
    for id_, formula in zip(data.table["id"][:5], data.formulas[:5]):
        assert canonical[id_][0].startswith(f"{formula} crystallizes in the "), canonical[id_][0]
    with pytest.raises(BadInput, match="unknown describer"):
        derive.dataset_descriptions(dataset, describer="gpt")


def test_a_bad_structure_does_not_stop_the_others():
    table = mp40_table().head(3)
    rows = [(table.material_id[0], table.cif[0]), ("broken", "data_x\n_cell_length_a 5\n"),
            (table.material_id[1], table.cif[1]),
            ("degenerate", table.cif[2].replace("_cell_length_a", "_cell_length_a 0 #"))]
    serial = list(derive.describe_rows(rows, workers=1))
    assert [r[0] for r in serial] == [r[0] for r in rows]
    assert serial[0][1] and serial[2][1] and serial[0][2] is None and serial[2][2] is None
    assert all(serial[k][1][0] and serial[k][1][1] for k in (0, 2))  # both forms
    assert serial[1][1] is None and "atom sites" in serial[1][2]
    assert serial[3][1] is None and serial[3][2].startswith("StructureError") and "cell length" in serial[3][2]
    assert list(derive.describe_rows(rows, workers=2)) == serial  # the process pool gives the same


def test_several_block_cif_picks_the_row_id(dataset):
    """data/build.py names a structure from a several-block CIF '<entry id>#<block name>': the row
    'entry#block2' is block 2's structure, described from block 2, never silently block 1's."""
    both, first, second = _two_blocks()
    one, two = parse_cif(first)[0], parse_cif(second)[0]
    id_, pair, reason = derive._describe_row(("entry#block2", both, "template", 0))
    assert id_ == "entry#block2" and reason is None
    assert pair == describe_both(two, seed=0, bonds=read_cif_bonds(second, two))
    assert pair != describe_both(one, seed=0, bonds=read_cif_bonds(first, one))
    assert two.reduced_formula() in pair[0] and one.reduced_formula() not in pair[0]
    _, pair1, _ = derive._describe_row(("entry#block1", both, "template", 0))
    assert pair1 == describe_both(one, seed=0, bonds=read_cif_bonds(first, one))
    _, missing, reason = derive._describe_row(("entry#block3", both, "template", 0))
    assert missing is None and "no block of that name" in reason
    # and through the dataset: each row of the two-block entry gets its own block's text
    data = Dataset(dataset)
    assert {"entry#block1", "entry#block2"} <= set(data.table["id"])
    derive.dataset_descriptions(dataset, seed=None)
    texts = Dataset(dataset).read_texts("descriptions")
    assert texts["entry#block2"][0].startswith(f"{two.reduced_formula()} crystallizes in the ")
    assert texts["entry#block1"][0].startswith(f"{one.reduced_formula()} crystallizes in the ")
