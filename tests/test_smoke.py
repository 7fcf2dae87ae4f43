def test_hello_through_a_session(client, app):
    rv = client.post("/code-sessions", json={"language": "python", "source_code": 'print("hello")'})
    assert rv.status_code == 201
    session_id = rv.json["session_id"]

    rv = client.post(f"/code-sessions/{session_id}/run")
    assert rv.status_code == 202
    assert rv.json["status"] == "QUEUED"

    from support.client import wait_terminal

    done = wait_terminal(client, rv.json["execution_id"])
    assert done["status"] == "COMPLETED"
    assert done["stdout"] == "hello\n"
    assert done["exit_code"] == 0
