from pipeline.data.instructions import REPRESENT_IMAGE, join_instruction, split_instruction, strip_placeholder


def test_placeholder_is_stripped_and_reported():
    assert strip_placeholder("<|image_1|>\nRepresent the given image.\n") == ("Represent the given image.", True)
    assert strip_placeholder("a caption") == ("a caption", False)


def test_train_and_eval_spellings_of_one_instruction_both_split():
    inst = "Represent the given image for classification."
    assert split_instruction("Represent the given image for classification.", [inst]) == (inst, "")
    assert split_instruction("Represent the given image for classification", [inst]) == (inst, "")
    assert split_instruction("represent  the given\nimage for classification", [inst]) == (inst, "")


def test_instruction_and_content_come_apart():
    inst = "Represent the given image with the following question:"
    text = "Represent the given image with the following question: What is the man holding?"
    assert split_instruction(text, [inst]) == (inst, "What is the man holding?")


def test_instruction_must_end_at_a_word_boundary():
    inst = "Identify the object shown in the image"
    assert split_instruction("Identify the object shown in the images of cats", [inst]) == (
        "", "Identify the object shown in the images of cats")


def test_longest_instruction_wins():
    text = "Represent the given image for classification."
    assert split_instruction(text, [REPRESENT_IMAGE, "Represent the given image for classification."])[1] == ""


def test_text_without_a_known_instruction_is_all_content():
    assert split_instruction("a dog on a sofa", ["Find me an everyday image that matches the given caption:"]) == (
        "", "a dog on a sofa")


def test_join_is_the_inverse_of_split():
    inst = "Find me a picture that matches the given description:"
    raw = join_instruction(inst, "a red circle", image=False)
    assert split_instruction(strip_placeholder(raw)[0], [inst]) == (inst, "a red circle")
    assert join_instruction(REPRESENT_IMAGE, image=True) == "<|image_1|>\nRepresent the given image.\n"
